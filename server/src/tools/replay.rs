//! `cairn log replay --until TIME --into NEW_DIR`: a data directory holding
//! the state as of a moment (point-in-time restore from a live data
//! directory), which `cairn serve --data NEW_DIR` then serves.
//!
//! "As of T" means every commit whose log time is at or before T: the log
//! time is the sequencer's commit time, taken before the fdatasync, so a
//! write acknowledged before T is in, and a write sent after T is out.
//! The source is read without its lock (the server may run); the chain is
//! verified up to the cut. The secrets file and attachments are copied as
//! they are now, so user ids and personal bucket ids stay the same.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eventlog::Head;

use super::archive::list_files;
use super::build::NewDataDir;
use super::progress::{Progress, ProgressMode, Unit};
use super::time::format_ms;
use super::walk::{walk_dir, RecordRef, Rules, Visitor};
use super::{check_empty_target, DataDir, ToolError, Until, ATTACHMENTS_DIR};
use crate::settings::SECRETS_FILE;

/// A replayed data directory.
#[derive(Debug, Clone)]
pub struct ReplayOutcome {
    pub into: PathBuf,
    pub until: Until,
    /// Head of the new log.
    pub head: Head,
    pub events: u64,
    pub secrets: bool,
    pub attachments: usize,
    pub elapsed: Duration,
}

impl ReplayOutcome {
    pub fn to_text(&self) -> String {
        let until = match self.until {
            Until::End => "the end of the log".to_string(),
            Until::Time(t) => format!("{} ({t})", format_ms(t)),
            Until::Offset(o) => format!("offset {o}"),
        };
        format!(
            "replayed:   {}\nuntil:      {until}\nlog head:   offset {} {}{}\nevents:     {} applied to the projections in {:.2} s\nsecrets:    {}\nattachments: {}\nserve it with: cairn serve --data {}\n",
            self.into.display(),
            self.head.offset,
            self.head.hash,
            if self.head.offset > 0 { format!(" (last record at {})", format_ms(self.head.ts_ms)) } else { String::new() },
            self.events,
            self.elapsed.as_secs_f64(),
            if self.secrets { "copied" } else { "none in the source" },
            self.attachments,
            self.into.display(),
        )
    }
}

struct Replayer<'a> {
    until: Until,
    build: &'a mut NewDataDir,
    past: bool,
}

impl Visitor for Replayer<'_> {
    fn record(&mut self, r: &RecordRef<'_>) -> Result<(), ToolError> {
        if !self.until.includes(r.offset, r.ts_ms) {
            // Offsets grow and times never decrease: nothing later is in.
            self.past = true;
            return Ok(());
        }
        self.build.push(r)
    }
    fn wants_more(&self) -> bool {
        !self.past
    }
}

/// Replays `data`'s log up to `until` into the new directory `into`.
pub fn replay(
    data: &DataDir,
    until: Until,
    into: &Path,
    mode: ProgressMode,
) -> Result<ReplayOutcome, ToolError> {
    let started = Instant::now();
    if !data.log().is_dir() {
        return Err(ToolError::NoLog(data.log()));
    }
    check_empty_target(into)?;
    let mut build = NewDataDir::create(into)?;
    let mut progress = Progress::new(mode, "replay", 0, Unit::Bytes);
    let mut v = Replayer {
        until,
        build: &mut build,
        past: false,
    };
    if let Err(e) = walk_dir(&data.log(), Rules::PREFIX, &mut v, &mut progress) {
        progress.abandon();
        return Err(e);
    }
    let secrets = match std::fs::read(data.secrets()) {
        Ok(bytes) => {
            build.write_file(Path::new(SECRETS_FILE), &bytes, true)?;
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            return Err(ToolError::io(
                format!("reading {}", data.secrets().display()),
                e,
            ))
        }
    };
    let attachments = list_files(&data.attachments())?;
    for (rel, abs) in &attachments {
        let bytes = std::fs::read(abs).map_err(ToolError::at("reading", abs))?;
        build.write_file(&Path::new(ATTACHMENTS_DIR).join(rel), &bytes, false)?;
    }
    progress.finish("log replayed");
    let (head, events) = build.finish(mode)?;
    Ok(ReplayOutcome {
        into: into.to_path_buf(),
        until,
        head,
        events,
        secrets,
        attachments: attachments.len(),
        elapsed: started.elapsed(),
    })
}
