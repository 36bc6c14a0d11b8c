//! A proptest state machine against an in-memory model: random single and
//! multi-record appends (some too large), reads from random offsets and
//! timestamps, reopen, crashes of every kind, injected write and sync
//! failures, with 4 KiB segments so that segments roll often.
//!
//! The model is the list of records the log must hold, plus the records of
//! a failed append that may or may not have reached the disk. After every
//! reopen the log must hold every acknowledged record followed by a prefix
//! of the failed append, and nothing else.

mod common;

use common::*;
use eventlog::mem_storage::{CrashMode, MemStorage};
use eventlog::{verify_storage, Log, LogError, NewRecord, MAX_RECORD};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    /// Records as (timestamp step, which may go back; payload size).
    Append(Vec<(i8, u16)>),
    TooLarge,
    Read(u16),
    IterFrom(u16),
    TimeLookup(u16, i8),
    Reopen,
    Crash(u8, u64),
    FailWrite(u8, bool),
    FailSync(u8),
}

fn op() -> impl Strategy<Value = Op> {
    let size = prop_oneof![8 => 0u16..400, 1 => 400u16..3000, 1 => 3000u16..6000];
    prop_oneof![
        10 => prop::collection::vec((-3i8..20, size), 1..5).prop_map(Op::Append),
        1 => Just(Op::TooLarge),
        3 => any::<u16>().prop_map(Op::Read),
        2 => any::<u16>().prop_map(Op::IterFrom),
        2 => (any::<u16>(), -2i8..3).prop_map(|(a, b)| Op::TimeLookup(a, b)),
        1 => Just(Op::Reopen),
        1 => (0u8..3, any::<u64>()).prop_map(|(m, s)| Op::Crash(m, s)),
        1 => (0u8..4, any::<bool>()).prop_map(|(n, s)| Op::FailWrite(n, s)),
        1 => (0u8..4).prop_map(Op::FailSync),
    ]
}

/// What a record must read back as (`ts_ms` after clamping).
#[derive(Debug, Clone, PartialEq)]
struct Expect {
    ts_ms: u64,
    schema: u16,
    payload: Vec<u8>,
}

struct Machine {
    storage: MemStorage,
    log: Log,
    model: Vec<Expect>,
    /// The records of the append that failed, if any since the last reopen.
    in_doubt: Vec<Expect>,
    poisoned: bool,
    clock: u64,
    counter: u64,
}

impl Machine {
    fn new() -> Machine {
        let storage = MemStorage::new();
        let log = open(&storage).expect("open");
        Machine {
            storage,
            log,
            model: Vec::new(),
            in_doubt: Vec::new(),
            poisoned: false,
            clock: 10_000,
            counter: 0,
        }
    }

    fn last_ts(&self) -> u64 {
        self.model.last().map_or(0, |e| e.ts_ms)
    }

    fn apply(&mut self, op: &Op) {
        match op {
            Op::Append(specs) => {
                let mut batch = Vec::new();
                let mut expect = Vec::new();
                let mut ts_floor = self.last_ts();
                for (step, size) in specs {
                    self.clock = self.clock.saturating_add_signed(i64::from(*step));
                    self.counter += 1;
                    let payload: Vec<u8> = (0..*size as usize)
                        .map(|k| (self.counter as usize * 7 + k) as u8)
                        .collect();
                    let schema = (self.counter % 5) as u16;
                    ts_floor = ts_floor.max(self.clock);
                    expect.push(Expect {
                        ts_ms: ts_floor,
                        schema,
                        payload: payload.clone(),
                    });
                    batch.push(NewRecord {
                        ts_ms: self.clock,
                        schema,
                        payload,
                    });
                }
                match self.log.append(&batch) {
                    Ok(heads) => {
                        assert!(!self.poisoned, "acknowledged on a poisoned writer");
                        for (i, (h, e)) in heads.iter().zip(&expect).enumerate() {
                            assert_eq!(h.offset, (self.model.len() + i + 1) as u64);
                            assert_eq!(h.ts_ms, e.ts_ms);
                        }
                        self.model.extend(expect);
                    }
                    Err(LogError::Poisoned(_)) => assert!(self.poisoned),
                    Err(e) => {
                        assert!(!self.poisoned, "a new error on a poisoned writer: {e}");
                        self.poisoned = true;
                        self.in_doubt = expect;
                    }
                }
            }
            Op::TooLarge => {
                let r = self.log.append(&[NewRecord {
                    ts_ms: 0,
                    schema: 0,
                    payload: vec![1; MAX_RECORD + 1],
                }]);
                match r {
                    Err(LogError::TooLarge(_)) => assert!(!self.poisoned),
                    Err(LogError::Poisoned(_)) => assert!(self.poisoned),
                    other => panic!("too large: {other:?}"),
                }
            }
            Op::Read(sel) => {
                let reader = self.log.reader();
                let n = self.model.len();
                assert!(matches!(
                    reader.read(n as u64 + 1),
                    Err(LogError::NotFound(_))
                ));
                if n > 0 {
                    let o = (*sel as usize % n) + 1;
                    let r = reader.read(o as u64).expect("read");
                    let e = &self.model[o - 1];
                    assert_eq!(
                        (r.offset, r.ts_ms, r.schema, &r.payload),
                        (o as u64, e.ts_ms, e.schema, &e.payload)
                    );
                }
            }
            Op::IterFrom(sel) => {
                let from = *sel as usize % (self.model.len() + 2);
                let got: Vec<Expect> = self
                    .log
                    .reader()
                    .iter_from(from as u64)
                    .map(|r| {
                        r.map(|r| Expect {
                            ts_ms: r.ts_ms,
                            schema: r.schema,
                            payload: r.payload,
                        })
                    })
                    .collect::<Result<_, _>>()
                    .expect("iterate");
                assert_eq!(got, self.model[from.max(1).min(self.model.len() + 1) - 1..]);
            }
            Op::TimeLookup(sel, delta) => {
                let t = if self.model.is_empty() {
                    5
                } else {
                    let e = &self.model[*sel as usize % self.model.len()];
                    e.ts_ms.saturating_add_signed(i64::from(*delta))
                };
                let expect = self
                    .model
                    .iter()
                    .position(|e| e.ts_ms >= t)
                    .map(|i| i as u64 + 1);
                assert_eq!(
                    self.log.reader().offset_for_time(t).expect("lookup"),
                    expect,
                    "ts {t}"
                );
            }
            Op::Reopen => {
                self.storage.heal();
                self.reopen(self.storage.clone());
            }
            Op::Crash(mode, seed) => {
                let mode = match mode {
                    0 => CrashMode::DropUnsynced,
                    1 => CrashMode::KeepAll,
                    _ => CrashMode::Random(*seed),
                };
                let s = self.storage.crash(mode);
                self.reopen(s);
            }
            Op::FailWrite(n, short) => {
                if !self.poisoned {
                    self.storage.fail_write_after(u64::from(*n), *short);
                }
            }
            Op::FailSync(n) => {
                if !self.poisoned {
                    self.storage.fail_sync_after(u64::from(*n));
                }
            }
        }
    }

    fn reopen(&mut self, storage: MemStorage) {
        // Drop the writer first: it holds the old files.
        let log = std::mem::replace(
            &mut self.log,
            Log::open_with(std::sync::Arc::new(MemStorage::new()), opts()).expect("scratch"),
        );
        drop(log);
        storage.heal();
        self.storage = storage;
        self.log = open(&self.storage).expect("reopen");
        let got: Vec<Expect> = self
            .log
            .reader()
            .iter_from(1)
            .map(|r| {
                r.map(|r| Expect {
                    ts_ms: r.ts_ms,
                    schema: r.schema,
                    payload: r.payload,
                })
            })
            .collect::<Result<_, _>>()
            .expect("iterate after reopen");
        let n = self.model.len();
        assert!(
            got.len() >= n,
            "lost acknowledged records: {} < {n}",
            got.len()
        );
        assert_eq!(got[..n], self.model[..], "acknowledged records changed");
        let extra = &got[n..];
        assert!(
            extra.len() <= self.in_doubt.len(),
            "records appeared from nowhere"
        );
        assert_eq!(
            extra,
            &self.in_doubt[..extra.len()],
            "not a prefix of the failed append"
        );
        self.model = got;
        self.in_doubt.clear();
        self.poisoned = false;
        let report = verify_storage(&self.storage).expect("verify");
        assert!(report.is_ok(), "{report:?}");
        assert_eq!(report.records, self.model.len() as u64);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn log_matches_model(ops in prop::collection::vec(op(), 1..80)) {
        let mut m = Machine::new();
        for op in &ops {
            m.apply(op);
        }
        m.reopen(m.storage.clone());
    }
}
