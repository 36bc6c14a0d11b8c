#!/usr/bin/env bash
# Load benchmark: Cairn vs. the reference Kinto 26.5.0 vs. a static-JSON hyper
# server (the ceiling), side by side in one run.  See docs/benchmarks.md.
#
#   bench/load.sh                      # everything, ~5 min after the builds
#   BENCH_DURATION=5s BENCH_SERVERS=cairn,ceiling bench/load.sh
#
# Installs wrk (Debian) if missing, builds `cairn` and the ceiling in release
# mode (skip with BENCH_NO_BUILD=1), then runs bench/load.py, which prints a
# markdown table and writes it to target/bench/results-<time>.md.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

say() { printf '[bench] %s\n' "$*" >&2; }

if [ "$(nproc)" -lt 2 ]; then
  say "warning: $(nproc) CPU(s): server and wrk cannot be pinned to different cores"
fi

if ! command -v wrk >/dev/null 2>&1; then
  say "installing wrk from Debian"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq wrk >/dev/null
fi
command -v taskset >/dev/null || { say "taskset (util-linux) is required"; exit 1; }

if [ "${BENCH_NO_BUILD:-0}" != "1" ]; then
  case ",${BENCH_SERVERS:-cairn,kinto,ceiling}," in
    *,cairn,*)
      say "cargo build --release -p cairn"
      cargo build --release -p cairn ;;
  esac
  case ",${BENCH_SERVERS:-cairn,kinto,ceiling}," in
    *,ceiling,*)
      say "cargo build --release (bench/ceiling)"
      cargo build --release --manifest-path bench/ceiling/Cargo.toml --target-dir target/bench-ceiling ;;
  esac
fi

# The reference server's launcher lives in the shared folder beside the repo.
SHARED_DIR="${SHARED_DIR:-$ROOT/../shared}"
export KINTO_START="${KINTO_START:-$SHARED_DIR/reference/start-kinto}"

exec python3 "$ROOT/bench/load.py" "$@"
