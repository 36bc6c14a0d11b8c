//! Shared by the integration tests: a log and a projection directory in a
//! temp dir, and random histories (`gen`).

#![allow(dead_code)]

pub mod gen;

use std::path::PathBuf;

use eventlog::{Head, Log, LogOptions, NewRecord};
use projections::{Commit, Projections, EVENT_SCHEMA};

/// A real log and a projection directory beside it.
pub struct Harness {
    pub tmp: tempfile::TempDir,
    pub log: Log,
    pub dir: PathBuf,
}

impl Harness {
    pub fn new() -> Harness {
        let tmp = tempfile::tempdir().expect("tempdir");
        // Small segments, so that histories span several (sealed) segments.
        let log = Log::open(
            &tmp.path().join("log"),
            LogOptions {
                segment_bytes: 4096,
            },
        )
        .expect("log");
        let dir = tmp.path().join("projections");
        Harness { tmp, log, dir }
    }

    pub fn open(&self) -> Projections {
        Projections::open(&self.dir, &self.log.reader()).expect("open projections")
    }

    /// Appends commits to the log (one record each, one fdatasync).
    pub fn append(&mut self, commits: &[Commit]) -> Vec<Head> {
        let ts = self.log.head().ts_ms + 1;
        let records: Vec<NewRecord> = commits
            .iter()
            .map(|c| NewRecord {
                ts_ms: ts,
                schema: EVENT_SCHEMA,
                payload: c.encode(),
            })
            .collect();
        self.log.append(&records).expect("append")
    }

    /// Appends, then applies, as the sequencer does.
    pub fn write(&mut self, p: &Projections, commits: &[Commit]) {
        let heads = self.append(commits);
        let pairs: Vec<(Head, &Commit)> = heads.into_iter().zip(commits.iter()).collect();
        p.apply(&pairs).expect("apply");
    }

    /// The dump of a projection built from scratch from the log, in a
    /// directory of its own.
    pub fn fresh_dump(&self) -> String {
        let dir = self
            .tmp
            .path()
            .join(format!("fresh-{}", self.log.head().offset));
        let p = Projections::open(&dir, &self.log.reader()).expect("fresh open");
        let d = p.dump().expect("dump");
        drop(p);
        std::fs::remove_dir_all(&dir).expect("remove fresh");
        d
    }
}
