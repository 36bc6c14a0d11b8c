//! Benchmark of the audit and recovery tools (issue 6, "Performance"):
//! verify, projection rebuild, snapshot and restore of a log of N events
//! (default 1,000,000 of ~300 bytes), and how long writes stall while a
//! snapshot of the live log is taken.
//!
//! ```sh
//! cargo run --release -p cairn --example tools_bench            # 1 M events
//! cargo run --release -p cairn --example tools_bench -- 200000  # fewer
//! BENCH_DIR=/mnt/disk cargo run --release -p cairn --example tools_bench
//! ```
//!
//! The data goes to a temporary directory under `$BENCH_DIR` (default: the
//! system temp dir); put it on a real disk, not tmpfs, or fsync is free.
//! The history: one event per commit (one write request each), records of
//! ~300 bytes of JSON spread over 20 collections, every 7th event an update
//! and every 13th a deletion. Results are printed as a Markdown table;
//! `docs/operations.md` keeps the figures of a reference run.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The allocator the `cairn` binary uses, so the figures are the binary's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use cairn::tools::{self, DataDir, ProgressMode, Until};
use eventlog::{Log, LogOptions, NewRecord};
use projections::{Change, Commit, Event, ObjectKey, Permissions, Projections, EVENT_SCHEMA};

fn event(n: u64, ts: u64) -> Event {
    let c = n % 20;
    let id = if n.is_multiple_of(7) && n > 1000 {
        format!("r{}", n - 1000)
    } else {
        format!("r{n}")
    };
    let key = ObjectKey::record("bench", &format!("c{c}"), &id);
    if n.is_multiple_of(13) && n > 1000 {
        return Event {
            key,
            last_modified: ts,
            change: Change::Delete,
        };
    }
    let mut perms = Permissions::new();
    perms.insert(
        "write".into(),
        vec!["basicauth:0123456789abcdef0123456789abcdef".into()],
    );
    let data = format!(
        r#"{{"id":"{id}","last_modified":{ts},"title":"Item {n} of the benchmark","done":{},"tags":["alpha","beta","gamma"],"notes":"{}"}}"#,
        n.is_multiple_of(2),
        "lorem ipsum dolor sit amet ".repeat(5)
    );
    Event {
        key,
        last_modified: ts,
        change: Change::Put {
            data: data.into_bytes(),
            permissions: perms,
        },
    }
}

fn generate(log_dir: &Path, events: u64) -> (u64, Duration) {
    let t = Instant::now();
    let mut log = Log::open(log_dir, LogOptions::default()).expect("open log");
    let mut ts = 1_700_000_000_000u64;
    let mut batch = Vec::with_capacity(1000);
    let mut payload_bytes = 0u64;
    for n in 0..events {
        ts += 1;
        let commit = Commit {
            request_id: format!("req-{n}"),
            user_id: Some("basicauth:0123456789abcdef0123456789abcdef".into()),
            events: vec![event(n, ts)],
        };
        let payload = commit.encode();
        payload_bytes += payload.len() as u64;
        batch.push(NewRecord {
            ts_ms: ts,
            schema: EVENT_SCHEMA,
            payload,
        });
        if batch.len() == 1000 {
            log.append(&batch).expect("append");
            batch.clear();
        }
    }
    log.append(&batch).expect("append");
    (payload_bytes, t.elapsed())
}

fn dir_size(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| {
                    let m = e.metadata().expect("metadata");
                    if m.is_dir() {
                        dir_size(&e.path())
                    } else {
                        m.len()
                    }
                })
                .sum()
        })
        .unwrap_or(0)
}

fn mbs(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / 1e6 / d.as_secs_f64()
}

fn per_s(n: u64, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

/// Latencies of back-to-back single-record appends (each one write plus
/// one fdatasync, as the sequencer does for a lone request) while `during`
/// runs, and for as long before it as a baseline.
fn write_latencies(log_dir: &Path, during: impl FnOnce()) -> (Vec<Duration>, Vec<Duration>) {
    let mut log = Log::open(log_dir, LogOptions::default()).expect("open log for writes");
    let stop = Arc::new(AtomicBool::new(false));
    let phase = Arc::new(AtomicBool::new(false));
    let (s, ph) = (stop.clone(), phase.clone());
    let writer = std::thread::spawn(move || {
        let mut base = Vec::new();
        let mut snap = Vec::new();
        let mut n = 10_000_000u64;
        while !s.load(Ordering::Relaxed) {
            let commit = Commit {
                request_id: format!("live-{n}"),
                user_id: None,
                events: vec![event(n, 1_800_000_000_000 + n)],
            };
            let rec = NewRecord {
                ts_ms: 1_800_000_000_000 + n,
                schema: EVENT_SCHEMA,
                payload: commit.encode(),
            };
            let t = Instant::now();
            log.append(&[rec]).expect("append");
            let d = t.elapsed();
            if ph.load(Ordering::Relaxed) {
                snap.push(d);
            } else {
                base.push(d);
            }
            n += 1;
        }
        (base, snap)
    });
    std::thread::sleep(Duration::from_secs(2));
    phase.store(true, Ordering::Relaxed);
    during();
    stop.store(true, Ordering::Relaxed);
    writer.join().expect("writer")
}

fn summary(lat: &mut [Duration]) -> String {
    if lat.is_empty() {
        return "no writes".into();
    }
    lat.sort();
    let q = |p: f64| lat[((lat.len() - 1) as f64 * p) as usize].as_secs_f64() * 1e3;
    format!(
        "{} writes, p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        lat.len(),
        q(0.5),
        q(0.99),
        q(1.0)
    )
}

fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let base = std::env::var_os("BENCH_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("cairn-tools-bench-")
        .tempdir_in(&base)
        .expect("tempdir");
    let data = DataDir::new(tmp.path().join("data"));
    std::fs::create_dir_all(&data.root).expect("data dir");
    std::fs::write(data.secrets(), br#"{"userid_hmac_secret":"x"}"#).expect("secrets");

    let (payload, gen) = generate(&data.log(), events);
    // BENCH_GENERATE_INTO=DIR: only write this data directory (log and
    // secrets) to DIR, for benchmarks that serve it (bench/snapshot_live.py).
    if let Some(into) = std::env::var_os("BENCH_GENERATE_INTO") {
        let into = std::path::PathBuf::from(into);
        std::fs::rename(&data.root, &into).expect("move the data directory");
        println!("generated {events} events into {}", into.display());
        return;
    }
    let log_bytes = dir_size(&data.log());
    println!(
        "# Cairn tools benchmark: {events} events, {:.0} bytes of payload each, log {:.1} MB (generated in {:.1} s)\n",
        payload as f64 / events as f64,
        log_bytes as f64 / 1e6,
        gen.as_secs_f64()
    );
    println!("| step | time | throughput | target |\n|---|---|---|---|");

    // BENCH_ONLY_LIVE=1: only the write latency during a live snapshot.
    let only_live = std::env::var_os("BENCH_ONLY_LIVE").is_some();
    let t = Instant::now();
    let v = tools::verify::verify(&data, None, ProgressMode::Quiet).expect("verify");
    let d = t.elapsed();
    assert_eq!(v.report.records(), events);
    println!(
        "| `log verify` | {:.2} s | {:.0} MB/s, {:.0} records/s | |",
        d.as_secs_f64(),
        mbs(v.report.bytes, d),
        per_s(events, d)
    );

    if !only_live {
        heavy(&data, tmp.path(), events);
    }
    live(&data, tmp.path());
}

/// Rebuild, snapshot, restore and replay of the stopped log.
fn heavy(data: &DataDir, tmp: &Path, events: u64) {
    // The product's rebuild: what `cairn serve` does with no projections,
    // up to the moment it can serve; then what closing the store costs
    // (writing it out, waiting for a compaction in flight).
    let t = Instant::now();
    {
        let log = Log::open(&data.log(), LogOptions::default()).expect("open");
        let p = Projections::open(&data.projections(), &log.reader()).expect("rebuild");
        let d = t.elapsed();
        println!(
            "| projection rebuild (`serve` start, no projections, until ready) | {:.2} s | {:.0} events/s | ≥ 100,000 events/s |",
            d.as_secs_f64(),
            per_s(events, d)
        );
        let t = Instant::now();
        p.flush().expect("flush");
        drop(p);
        println!(
            "| then flush and close the projections | {:.2} s | | |",
            t.elapsed().as_secs_f64()
        );
    }

    let snap = tmp.join("snap.tar");
    let t = Instant::now();
    let s = tools::snapshot::snapshot(data, &snap, ProgressMode::Quiet).expect("snapshot");
    let d = t.elapsed();
    println!(
        "| `snapshot` (stopped server) | {:.2} s | {:.0} MB/s ({:.1} MB archive) | |",
        d.as_secs_f64(),
        mbs(s.bytes, d),
        s.bytes as f64 / 1e6
    );

    let into = tmp.join("restored");
    let t = Instant::now();
    let r =
        tools::restore::restore(&snap, &into, Until::End, ProgressMode::Quiet).expect("restore");
    let d = t.elapsed();
    println!(
        "| `restore` (check + re-append + rebuild) | {:.2} s | {:.0} MB/s, {:.0} events/s | |",
        d.as_secs_f64(),
        mbs(s.bytes, d),
        per_s(r.events, d)
    );
    std::fs::remove_dir_all(&into).expect("cleanup");

    let replay_into = tmp.join("replayed");
    let t = Instant::now();
    let half = 1_700_000_000_000 + events / 2;
    let rp = tools::replay::replay(data, Until::Time(half), &replay_into, ProgressMode::Quiet)
        .expect("replay");
    let d = t.elapsed();
    println!(
        "| `log replay --until` (half the log) | {:.2} s | {:.0} events/s | |",
        d.as_secs_f64(),
        per_s(rp.events, d)
    );
    std::fs::remove_dir_all(&replay_into).expect("cleanup");
}

/// Writes while a snapshot of the live log is taken.
fn live(data: &DataDir, tmp: &Path) {
    let live_snap = tmp.join("live.tar");
    let mut snap_time = Duration::ZERO;
    let (mut base, mut during) = write_latencies(&data.log(), || {
        let t = Instant::now();
        tools::snapshot::snapshot(data, &live_snap, ProgressMode::Quiet).expect("live snapshot");
        snap_time = t.elapsed();
    });
    println!(
        "| `snapshot` of the live log, while writing | {:.2} s | | |",
        snap_time.as_secs_f64()
    );
    println!(
        "\nWrites (one append + fdatasync each) before the snapshot: {}",
        summary(&mut base)
    );
    println!(
        "Writes during the snapshot: {} (target: no stall over 50 ms)",
        summary(&mut during)
    );
}
