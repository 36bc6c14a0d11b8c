//! End-to-end basics on the real file system: append, read, iterate, roll,
//! reopen, time lookup, tailing, torn tail, lock.

use eventlog::{verify, Log, LogError, LogOptions, NewRecord};

fn rec(i: u64, len: usize) -> NewRecord {
    NewRecord {
        ts_ms: 1000 + i,
        schema: 1,
        payload: vec![(i % 251) as u8; len],
    }
}

fn small() -> LogOptions {
    LogOptions {
        segment_bytes: 4096,
    }
}

#[test]
fn append_read_reopen_roll() {
    let dir = tempfile::tempdir().unwrap();
    let mut heads = Vec::new();
    {
        let mut log = Log::open(dir.path(), small()).unwrap();
        assert_eq!(log.head().offset, 0);
        for i in 0..100u64 {
            let batch: Vec<_> = (0..(i % 3 + 1))
                .map(|j| rec(i * 10 + j, (i * 7 % 300) as usize))
                .collect();
            heads.extend(log.append(&batch).unwrap());
        }
        let r = log.reader();
        assert_eq!(r.head(), *heads.last().unwrap());
        for h in &heads {
            let rec = r.read(h.offset).unwrap();
            assert_eq!(rec.hash, h.hash);
            assert_eq!(rec.ts_ms, h.ts_ms);
        }
    }
    let segs = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".seg")
        })
        .count();
    assert!(segs > 3, "expected several segments, got {segs}");
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok(), "{report:?}");
    assert_eq!(report.records, heads.len() as u64);
    assert_eq!(report.head, *heads.last().unwrap());

    let mut log = Log::open(dir.path(), small()).unwrap();
    assert_eq!(log.head(), *heads.last().unwrap());
    let r = log.reader();
    let all: Vec<_> = r.iter_from(0).collect::<Result<_, _>>().unwrap();
    assert_eq!(all.len(), heads.len());
    for (rec, h) in all.iter().zip(&heads) {
        assert_eq!(rec.offset, h.offset);
        assert_eq!(rec.hash, h.hash);
    }
    let from_mid: Vec<_> = r.iter_from(57).collect::<Result<_, _>>().unwrap();
    assert_eq!(from_mid.first().unwrap().offset, 57);
    assert_eq!(r.offset_for_time(0).unwrap(), Some(1));
    assert_eq!(r.offset_for_time(u64::MAX).unwrap(), None);
    let t = heads[100].ts_ms;
    let o = r.offset_for_time(t).unwrap().unwrap();
    assert!(r.read(o).unwrap().ts_ms >= t);
    assert!(o == 1 || r.read(o - 1).unwrap().ts_ms < t);
    let more = log.append(&[rec(99999, 10)]).unwrap();
    assert_eq!(more[0].offset, heads.len() as u64 + 1);
    assert!(matches!(r.read(0), Err(LogError::NotFound(0))));
    assert!(matches!(
        r.read(more[0].offset + 1),
        Err(LogError::NotFound(_))
    ));
}

#[test]
fn second_open_is_locked_but_verify_works() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    log.append(&[rec(1, 10)]).unwrap();
    assert!(matches!(
        Log::open(dir.path(), small()),
        Err(LogError::Locked(_))
    ));
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok());
    assert_eq!(report.records, 1);
}

#[test]
fn clamps_timestamps() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    let h = log
        .append(&[
            NewRecord {
                ts_ms: 50,
                schema: 0,
                payload: vec![],
            },
            NewRecord {
                ts_ms: 10,
                schema: 0,
                payload: vec![],
            },
        ])
        .unwrap();
    assert_eq!(h[1].ts_ms, 50);
    assert_eq!(log.reader().read(2).unwrap().ts_ms, 50);
}

#[tokio::test]
async fn wait_for_sees_new_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    let reader = log.reader();
    let waiter = tokio::spawn(async move { reader.wait_for(3).await });
    log.append(&[rec(1, 1), rec(2, 1)]).unwrap();
    log.append(&[rec(3, 1)]).unwrap();
    let head = waiter.await.unwrap().unwrap();
    assert_eq!(head.offset, 3);
    let reader = log.reader();
    drop(log);
    assert!(matches!(reader.wait_for(4).await, Err(LogError::Closed)));
}

#[test]
fn reader_and_iterator_can_cross_threads() {
    fn shared<T: Clone + Send + Sync + 'static>() {}
    fn owned<T: Send + 'static>() {}
    shared::<eventlog::LogReader>();
    owned::<eventlog::RecordIter>();
    owned::<Log>();
    owned::<eventlog::GroupCommitter>();
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    let reader = log.reader();
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let r = reader.clone();
            std::thread::spawn(move || {
                let mut seen = 0;
                while seen < 200 {
                    let head = r.head().offset;
                    for rec in r.iter_from(seen + 1) {
                        let rec = rec.unwrap();
                        assert_eq!(rec.offset, seen + 1);
                        seen = rec.offset;
                    }
                    assert!(seen >= head);
                }
            })
        })
        .collect();
    for i in 0..100 {
        log.append(&[rec(2 * i, 100), rec(2 * i + 1, 7)]).unwrap();
    }
    for t in readers {
        t.join().unwrap();
    }
}

/// `verify` on a directory a writer is appending to and rolling (4 KiB
/// segments: a roll every few appends) never reports a problem.
#[test]
fn verify_runs_beside_a_live_writer() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path(), small()).unwrap();
    log.append(&[rec(0, 10)]).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s = stop.clone();
    let count = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(1));
    let c = count.clone();
    let writer = std::thread::spawn(move || {
        let mut i = 1;
        while !s.load(std::sync::atomic::Ordering::Relaxed) {
            log.append(&[rec(i, (i * 53 % 900) as usize)]).unwrap();
            i += 1;
            c.store(i, std::sync::atomic::Ordering::Relaxed);
        }
        i
    });
    let mut last = 0;
    let mut rounds = 0;
    while rounds < 40 || count.load(std::sync::atomic::Ordering::Relaxed) < 120 {
        rounds += 1;
        let report = verify(dir.path()).unwrap();
        assert!(report.is_ok(), "{report:?}");
        assert!(report.records >= last);
        last = report.records;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let written = writer.join().unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.is_ok());
    assert_eq!(report.records, written);
    assert!(report.segments > 3);
}
