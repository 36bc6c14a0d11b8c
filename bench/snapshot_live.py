#!/usr/bin/env python3
"""Write latency of a live Cairn server while `cairn snapshot` copies it.

Issue 6 asks that a snapshot of a live server never pause writes for more
than 50 ms. This drives the real thing: a release `cairn serve` on a data
directory of N events (default 1,000,000, written by the tools benchmark's
generator), one HTTP client creating records back to back (each one
fsynced before its 201), first alone, then while `cairn snapshot` runs
on the same data directory. It prints the latencies of both phases.

    cargo build --release -p cairn --bin cairn --example tools_bench
    python3 bench/snapshot_live.py [EVENTS]

Environment: BENCH_DIR (parent of the temporary directory; a real disk,
not tmpfs), CAIRN_BIN, TOOLS_BENCH_BIN; SETTLE_S=N waits N seconds after
the start before measuring; RESTART=1 measures a server restarted on the
projections the first start built (no rebuild aftermath).
"""

import base64
import http.client
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CAIRN = os.environ.get("CAIRN_BIN", os.path.join(ROOT, "target/release/cairn"))
GENERATOR = os.environ.get(
    "TOOLS_BENCH_BIN", os.path.join(ROOT, "target/release/examples/tools_bench")
)
AUTH = "Basic " + base64.b64encode(b"bench:bench").decode()
BASELINE_S = 3.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_up(port, proc, timeout=300):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"cairn serve exited with {proc.returncode}")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            c.request("GET", "/v1/__heartbeat__")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("cairn serve did not come up")


def summary(lat):
    lat = sorted(lat)
    if not lat:
        return "no writes"
    pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000
    return (
        f"{len(lat):,} writes, p50 {pick(0.5):.2f} ms, p99 {pick(0.99):.2f} ms, "
        f"max {lat[-1] * 1000:.2f} ms"
    )


def main():
    events = sys.argv[1] if len(sys.argv) > 1 else "1000000"
    for binary in (CAIRN, GENERATOR):
        if not os.path.exists(binary):
            sys.exit(f"missing {binary}: cargo build --release -p cairn --bin cairn --example tools_bench")
    work = tempfile.mkdtemp(prefix="cairn-snapshot-live-", dir=os.environ.get("BENCH_DIR"))
    server = None
    try:
        data = os.path.join(work, "data")
        env = dict(os.environ, BENCH_GENERATE_INTO=data, BENCH_DIR=work)
        subprocess.run([GENERATOR, events], check=True, env=env, stdout=subprocess.DEVNULL)
        port = free_port()
        started = time.time()
        server = subprocess.Popen(
            [CAIRN, "serve", "--data", data, "--port", str(port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=dict(os.environ, CAIRN_LOG="warn"),
        )
        wait_up(port, server)
        print(f"server up on {events} events in {time.time() - started:.1f} s (projections built)")
        if os.environ.get("RESTART") == "1":
            server.terminate()
            server.wait()
            server = subprocess.Popen(
                [CAIRN, "serve", "--data", data, "--port", str(port)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                env=dict(os.environ, CAIRN_LOG="warn"),
            )
            wait_up(port, server)
            print("restarted on the built projections")
        time.sleep(float(os.environ.get("SETTLE_S", "0")))

        phase = {"name": "before"}
        lat = {"before": [], "during": []}
        stop = threading.Event()

        def writer():
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            body = json.dumps({"data": {"title": "written during the benchmark", "n": 0}})
            headers = {"Authorization": AUTH, "Content-Type": "application/json"}
            while not stop.is_set():
                t = time.perf_counter()
                c.request("POST", "/v1/buckets/default/collections/live/records", body, headers)
                r = c.getresponse()
                r.read()
                if r.status != 201:
                    raise SystemExit(f"write answered {r.status}")
                lat[phase["name"]].append(time.perf_counter() - t)
                when.append((time.perf_counter() - t, t - t0))

        when = []
        t0 = time.perf_counter()
        th = threading.Thread(target=writer, daemon=True)
        th.start()
        time.sleep(BASELINE_S)
        phase["name"] = "during"
        archive = os.path.join(work, "snap.tar")
        t = time.time()
        subprocess.run(
            [CAIRN, "snapshot", "--data", data, "--out", archive, "--quiet"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
        took = time.time() - t
        stop.set()
        th.join()
        size = os.path.getsize(archive) / 1e6
        print(f"before the snapshot ({BASELINE_S:.0f} s): {summary(lat['before'])}")
        print(f"during the snapshot ({took:.2f} s, {size:.1f} MB archive): {summary(lat['during'])}")
        print("target: no write paused more than 50 ms")
        slow = sorted(when, reverse=True)[:5]
        print("slowest writes (ms, at s):", ", ".join(f"{d * 1000:.1f} @ {at:.2f}" for d, at in slow))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
