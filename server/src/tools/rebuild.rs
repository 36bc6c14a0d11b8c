//! `cairn projections rebuild`: throws a data directory's projections away
//! and builds them again from the log, with progress. For an operator who
//! wants a fresh store (after a crash left doubts, to reclaim disk space,
//! or to time a rebuild) without deleting directories by hand; `cairn
//! serve` would do the same at its next start when the projections are
//! missing, only without a progress bar.
//!
//! Unlike the other tools it writes to the data directory, so it takes the
//! log's lock first: it refuses to run beside a live server. The old store
//! is renamed to `projections.old-<ms>` and removed once the new one is
//! complete; a crash in between leaves a valid partial store (every batch
//! moves `meta/applied` with its changes) that the next start completes.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use eventlog::{Head, Log, LogError, LogOptions};
use projections::{Projections, Replayed};

use super::progress::{Progress, ProgressMode, Unit};
use super::{DataDir, ToolError};
use crate::serve::PROJECTIONS_DIR;

/// A rebuilt projection store.
#[derive(Debug, Clone)]
pub struct RebuildOutcome {
    /// The log head the projections now reflect.
    pub head: Head,
    pub records: u64,
    pub events: u64,
    /// From the start of the rebuild until the store could serve.
    pub build: Duration,
    /// Writing the store out and closing it.
    pub close: Duration,
    pub size_on_disk: u64,
}

impl RebuildOutcome {
    pub fn to_text(&self) -> String {
        let secs = self.build.as_secs_f64();
        let rate = if secs > 0.0 {
            format!("{:.0}", self.events as f64 / secs)
        } else {
            "-".into()
        };
        format!(
            "rebuilt:    projections up to offset {} {}\nevents:     {} from {} records in {:.2} s ({rate} events/s), then {:.2} s to write out and close\nsize:       {:.1} MiB on disk\n",
            self.head.offset,
            self.head.hash,
            self.events,
            self.records,
            secs,
            self.close.as_secs_f64(),
            self.size_on_disk as f64 / (1024.0 * 1024.0),
        )
    }
}

pub fn rebuild(data: &DataDir, mode: ProgressMode) -> Result<RebuildOutcome, ToolError> {
    let log_dir = data.log();
    if !log_dir.is_dir() {
        return Err(ToolError::NoLog(data.root.clone()));
    }
    let log = Log::open(&log_dir, LogOptions::default()).map_err(|e| match e {
        LogError::Locked(_) => ToolError::Refused(format!(
            "a server is running on {} (its log is locked): stop it first",
            data.root.display()
        )),
        e => ToolError::Log(e),
    })?;
    let head = log.head();
    let dir = data.projections();
    if dir.exists() {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        let aside = dir.with_file_name(format!("{PROJECTIONS_DIR}.old-{ms}"));
        std::fs::rename(&dir, &aside).map_err(ToolError::at("moving aside", &dir))?;
    }
    let mut progress = Progress::new(mode, "rebuild", head.offset, Unit::Records);
    let started = Instant::now();
    let mut last = Replayed {
        offset: 0,
        target: head.offset,
        records: 0,
        events: 0,
    };
    let opened = Projections::open_with_progress(&dir, &log.reader(), &mut |r| {
        progress.inc(r.records.saturating_sub(last.records));
        last = r;
    });
    let projections = match opened {
        Ok(p) => p,
        Err(e) => {
            progress.abandon();
            return Err(e.into());
        }
    };
    let build = started.elapsed();
    progress.finish(&format!("{} records", head.offset));
    let closing = Instant::now();
    projections.flush()?;
    let size_on_disk = projections.size_on_disk()?;
    let applied = projections.applied();
    drop(projections);
    Ok(RebuildOutcome {
        head: applied,
        records: last.records,
        events: last.events,
        build,
        close: closing.elapsed(),
        size_on_disk,
    })
}
