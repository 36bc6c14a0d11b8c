//! Measures how fast the projections rebuild from a log, and what the
//! common reads cost. Run with
//! `cargo run --release -p projections --example rebuild_speed [events [per-commit]]`.
//!
//! The history: records of ~200 bytes in 20 collections, written in
//! commits of 10 events (as a busy server's group commits would be; the
//! second argument changes it), with an update or a delete every few events.

use std::time::Instant;

/// The allocator the `cairn` binary uses, so the figures are the server's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use eventlog::{Log, LogOptions, NewRecord};
use projections::{
    Change, Commit, Event, ObjectKey, Order, Permissions, Projections, Resource, EVENT_SCHEMA,
};

fn main() {
    let events: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(200_000);
    let per_commit: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let tmp = tempfile::tempdir().expect("tempdir");
    let mut log = Log::open(&tmp.path().join("log"), LogOptions::default()).expect("log");

    let t = Instant::now();
    let mut ts = 1_700_000_000_000u64;
    let mut pending = Vec::new();
    let mut n = 0u64;
    while n < events {
        let mut commit = Commit {
            request_id: format!("req-{n}"),
            user_id: Some("basicauth:u".into()),
            events: Vec::new(),
        };
        for _ in 0..per_commit {
            ts += 1;
            let c = n % 20;
            // Every 7th event rewrites an earlier record, every 13th deletes one.
            let id = if n.is_multiple_of(7) && n > 100 {
                format!("r{}", n - 100)
            } else {
                format!("r{n}")
            };
            let key = ObjectKey::record("bench", &format!("c{c}"), &id);
            let change = if n.is_multiple_of(13) && n > 100 {
                Change::Delete
            } else {
                let data = format!(
                    r#"{{"id":"{id}","last_modified":{ts},"title":"record number {n}","done":false,"tags":["a","b","c"],"body":"lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor"}}"#
                );
                let mut permissions = Permissions::new();
                permissions.insert("write".into(), vec!["basicauth:u".into()]);
                Change::Put {
                    data: data.into_bytes(),
                    permissions,
                }
            };
            commit.events.push(Event {
                key,
                last_modified: ts,
                change,
            });
            n += 1;
        }
        pending.push(NewRecord {
            ts_ms: ts,
            schema: EVENT_SCHEMA,
            payload: commit.encode(),
        });
        if pending.len() == 1000 {
            log.append(&pending).expect("append");
            pending.clear();
        }
    }
    log.append(&pending).expect("append");
    println!(
        "wrote {events} events in {} records: {:?}",
        log.head().offset,
        t.elapsed()
    );

    let reader = log.reader();
    // What reading the log costs on its own: every record read (crc and
    // chain checked) and decoded, nothing applied.
    let t = Instant::now();
    let mut decoded = 0usize;
    for record in reader.iter_from(1) {
        let record = record.expect("record");
        decoded += Commit::decode(&record.payload)
            .expect("decode")
            .events
            .len();
    }
    println!(
        "read and decode the log alone: {decoded} events in {:.2} s",
        t.elapsed().as_secs_f64()
    );
    let dir = tmp.path().join("projections");
    let t = Instant::now();
    let cpu = thread_cpu_ns();
    let p = Projections::open(&dir, &reader).expect("open");
    let secs = t.elapsed().as_secs_f64();
    println!(
        "rebuild from scratch: {events} events in {secs:.2} s = {:.0} events/s (wall)",
        events as f64 / secs
    );
    if let (Some(a), Some(b)) = (cpu, thread_cpu_ns()) {
        let cpu_secs = (b - a) as f64 / 1e9;
        println!(
            "  on-CPU time of the rebuilding thread: {cpu_secs:.2} s = {:.0} events per CPU-second",
            events as f64 / cpu_secs
        );
    }
    p.flush().expect("flush");
    println!(
        "size on disk: {} MiB",
        p.size_on_disk().expect("size") >> 20
    );

    let parent = "/bench/collections/c3".replace("/bench", "/buckets/bench");
    let count = p.count(&parent, Resource::Record).expect("count");
    let iters = 2000;
    let t = Instant::now();
    for _ in 0..iters {
        let page: Vec<_> = p.list(&parent, Resource::Record, None).take(100).collect();
        assert_eq!(page.len(), 100.min(count as usize));
    }
    println!(
        "list first 100 of {count}: {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6 / iters as f64
    );
    let t = Instant::now();
    for _ in 0..iters {
        let page: Vec<_> = p
            .list_raw(&parent, Resource::Record, Order::NewestFirst, None)
            .take(100)
            .collect();
        assert_eq!(page.len(), 100.min(count as usize));
    }
    println!(
        "list_raw first 100 of {count}: {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6 / iters as f64
    );
    let since = p
        .list_timestamp(&parent, Resource::Record)
        .expect("ts")
        .expect("some")
        - 200;
    let t = Instant::now();
    let mut got = 0;
    for _ in 0..iters {
        got = p
            .changes(&parent, Resource::Record, Some(since), None)
            .expect("changes")
            .len();
    }
    println!(
        "_since returning {got}: {:.1} µs",
        t.elapsed().as_secs_f64() * 1e6 / iters as f64
    );
    let key = ObjectKey::record("bench", "c3", "r3");
    let t = Instant::now();
    for _ in 0..iters * 10 {
        assert!(p.get(&key).expect("get").is_some());
    }
    println!(
        "get one: {:.2} µs",
        t.elapsed().as_secs_f64() * 1e6 / (iters * 10) as f64
    );

    // Incremental apply, one commit of one event at a time (the sequencer's
    // worst case: no group to share the batch).
    let m = 2000u64;
    let mut applying = std::time::Duration::ZERO;
    let t = Instant::now();
    for i in 0..m {
        ts += 1;
        let id = format!("inc{i}");
        let data = format!(r#"{{"id":"{id}","last_modified":{ts}}}"#).into_bytes();
        let commit = Commit {
            request_id: "inc".into(),
            user_id: None,
            events: vec![Event {
                key: ObjectKey::record("bench", "c0", &id),
                last_modified: ts,
                change: Change::Put {
                    data,
                    permissions: Permissions::new(),
                },
            }],
        };
        let record = NewRecord {
            ts_ms: ts,
            schema: EVENT_SCHEMA,
            payload: commit.encode(),
        };
        let heads = log.append(&[record]).expect("append");
        let t_apply = Instant::now();
        p.apply(&[(heads[0], &commit)]).expect("apply");
        applying += t_apply.elapsed();
    }
    println!(
        "apply one single-event commit: {:.1} µs (append with fdatasync + apply: {:.1} µs)",
        applying.as_secs_f64() * 1e6 / m as f64,
        t.elapsed().as_secs_f64() * 1e6 / m as f64
    );
}

/// Nanoseconds this thread has spent on a CPU (Linux), to read past the
/// noise of a shared machine.
fn thread_cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}
