//! Fault injection: a failed write or sync is never acknowledged, poisons the
//! writer, and no later append is acknowledged on top of it; the group
//! committer shares syncs and hands a failure to every waiting appender.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use eventlog::mem_storage::{CrashMode, MemStorage};
use eventlog::{verify_storage, GroupCommitter, LogError};

#[test]
fn failed_write_or_sync_is_never_acknowledged() {
    // Fail the k-th write or sync counted from a log with some records, with
    // and without a short write; every crash mode afterwards.
    for k in 0..8u64 {
        for fault in 0..3 {
            for mode in [
                CrashMode::KeepAll,
                CrashMode::DropUnsynced,
                CrashMode::Random(k * 3 + fault),
            ] {
                let storage = MemStorage::new();
                let mut log = open(&storage).unwrap();
                let (mut recs, mut heads) = append_n(&mut log, 0, 5);
                match fault {
                    0 => storage.fail_write_after(k, false),
                    1 => storage.fail_write_after(k, true),
                    _ => storage.fail_sync_after(k),
                }
                let mut failed = None;
                for i in 5..60 {
                    let batch = vec![rec(i, (i * 97 % 700) as usize), rec(i + 1000, 30)];
                    match log.append(&batch) {
                        Ok(h) => {
                            assert!(failed.is_none(), "acknowledged after a failure");
                            recs.extend(batch);
                            heads.extend(h);
                        }
                        Err(LogError::Poisoned(_)) => assert!(failed.is_some()),
                        Err(e) => {
                            assert!(failed.is_none(), "second failure: {e}");
                            failed = Some(batch);
                        }
                    }
                }
                let attempted = failed.expect("the fault fired");
                assert!(log.poisoned().is_some());
                let reader = log.reader();
                assert_eq!(reader.head(), *heads.last().unwrap());
                drop(log);
                let s = storage.crash(mode);
                let log = open(&s).unwrap_or_else(|e| panic!("k {k} fault {fault} {mode:?}: {e}"));
                // Everything acknowledged is there; what follows is a prefix
                // of the failed batch.
                assert_prefix(&log, &recs, &heads);
                let extra = (log.head().offset - heads.len() as u64) as usize;
                assert!(extra <= attempted.len());
                for (j, r) in log.reader().iter_from(heads.len() as u64 + 1).enumerate() {
                    assert_eq!(r.unwrap().payload, attempted[j].payload);
                }
                drop(log);
                assert!(verify_storage(&s).unwrap().is_ok());
            }
        }
    }
}

#[test]
fn too_large_does_not_poison() {
    let storage = MemStorage::new();
    let mut log = open(&storage).unwrap();
    let big = vec![0u8; eventlog::MAX_RECORD + 1];
    let r = log.append(&[eventlog::NewRecord {
        ts_ms: 1,
        schema: 0,
        payload: big,
    }]);
    assert!(matches!(r, Err(LogError::TooLarge(_))));
    let max = vec![7u8; eventlog::MAX_RECORD];
    let h = log
        .append(&[eventlog::NewRecord {
            ts_ms: 1,
            schema: 0,
            payload: max.clone(),
        }])
        .unwrap();
    assert_eq!(log.reader().read(h[0].offset).unwrap().payload, max);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_shares_syncs() {
    let storage = MemStorage::new();
    storage.set_sync_delay(Duration::from_millis(3));
    let log = open(&storage).unwrap();
    let gc = Arc::new(GroupCommitter::start(log).unwrap());
    let (_, syncs_before) = storage.counts();
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let gc = gc.clone();
        tasks.push(tokio::spawn(async move {
            let mut heads = Vec::new();
            for i in 0..20 {
                heads.push(gc.append(rec(t * 100 + i, 50)).await.unwrap());
            }
            heads
        }));
    }
    let mut offsets = Vec::new();
    for t in tasks {
        let heads = t.await.unwrap();
        assert!(heads.windows(2).all(|w| w[0].offset < w[1].offset));
        offsets.extend(heads.iter().map(|h| h.offset));
    }
    offsets.sort();
    assert_eq!(offsets, (1..=320).collect::<Vec<_>>());
    let (_, syncs_after) = storage.counts();
    let syncs = syncs_after - syncs_before;
    assert!(syncs < 160, "320 appends took {syncs} syncs: no grouping");
    let reader = gc.reader();
    assert_eq!(reader.head().offset, 320);
    let gc = Arc::try_unwrap(gc).unwrap();
    let log = tokio::task::spawn_blocking(move || gc.shutdown())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(log.head().offset, 320);
    drop(log);
    assert!(verify_storage(&storage).unwrap().is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_failure_reaches_every_waiter() {
    let storage = MemStorage::new();
    storage.set_sync_delay(Duration::from_millis(2));
    let log = open(&storage).unwrap();
    let gc = Arc::new(GroupCommitter::start(log).unwrap());
    gc.append(rec(0, 10)).await.unwrap();
    storage.fail_sync_after(3);
    let mut tasks = Vec::new();
    for t in 0..16u64 {
        let gc = gc.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut errors = 0;
            for i in 0..10 {
                match gc.append(rec(t * 100 + i + 1, 20)).await {
                    Ok(h) => {
                        assert_eq!(errors, 0, "acknowledged after an error");
                        acked.push(h.offset);
                    }
                    Err(_) => errors += 1,
                }
            }
            (acked, errors)
        }));
    }
    let mut acked = vec![1];
    let mut errors = 0;
    for t in tasks {
        let (a, e) = t.await.unwrap();
        acked.extend(a);
        errors += e;
    }
    acked.sort();
    assert!(errors > 0);
    let max_acked = *acked.last().unwrap();
    assert_eq!(
        acked,
        (1..=max_acked).collect::<Vec<_>>(),
        "acknowledged offsets are dense"
    );
    assert!(matches!(
        gc.append(rec(9999, 1)).await,
        Err(LogError::Poisoned(_))
    ));
    let gc = Arc::try_unwrap(gc).unwrap();
    drop(
        tokio::task::spawn_blocking(move || gc.shutdown())
            .await
            .unwrap(),
    );
    let s = storage.crash(CrashMode::DropUnsynced);
    let log = open(&s).unwrap();
    assert!(log.head().offset >= max_acked);
}
