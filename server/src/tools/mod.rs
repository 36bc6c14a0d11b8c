//! The audit and recovery tools (issue 6): `cairn log verify | show |
//! checkpoint | replay`, `cairn snapshot`, `cairn restore` and `cairn
//! projections rebuild`. `main.rs`
//! only parses arguments and calls the `run` function of each module; every
//! module returns its result as a value that the caller prints, so the
//! logic is tested without spawning the binary. `docs/operations.md` has
//! worked examples.
//!
//! Map:
//! - `error`: [`ToolError`], the one error type, and its exit statuses.
//! - `time`: epoch ms or RFC 3339 in, RFC 3339 (UTC) out.
//! - `progress`: a bar on a terminal, plain lines otherwise.
//! - `walk`: the read-only, chain-checking walk over log segments (a live
//!   directory or the entries of a snapshot archive).
//! - `checkpoint`: the exported `(offset, ts, chain head)` and its check.
//! - `verify`: `log verify` and `log checkpoint`.
//! - `show`: `log show`, events filtered by time, object, user, action.
//! - `build`: a new data directory filled from verified records (replay and
//!   restore share it): log re-appended, projections applied, secrets copied.
//! - `replay`: `log replay --until`, point-in-time copy of a data directory.
//! - `archive`: the snapshot file format (a tar with a manifest).
//! - `snapshot`, `restore`.
//! - `rebuild`: `projections rebuild`, the projections built again from
//!   the log, with progress.
//!
//! None of the tools but `projections rebuild` takes the log's lock or
//! writes to the source data directory: they run beside a live server.
//! `projections rebuild` takes the lock, so it refuses to run beside one.

pub mod archive;
pub mod build;
pub mod checkpoint;
mod error;
pub mod progress;
pub mod rebuild;
pub mod replay;
pub mod restore;
pub mod show;
pub mod snapshot;
pub mod time;
pub mod verify;
pub mod walk;

use std::path::{Path, PathBuf};

pub use error::ToolError;
pub use progress::ProgressMode;

use crate::serve::{LOG_DIR, PROJECTIONS_DIR};
use crate::settings::SECRETS_FILE;

/// Subdirectory of a data directory for attachments. Cairn has no
/// attachments yet; snapshots carry the directory when present so that a
/// future attachments plugin is backed up from day one.
pub const ATTACHMENTS_DIR: &str = "attachments";

/// The parts of a data directory the tools read or write.
#[derive(Debug, Clone)]
pub struct DataDir {
    pub root: PathBuf,
}

impl DataDir {
    pub fn new(root: impl Into<PathBuf>) -> DataDir {
        DataDir { root: root.into() }
    }
    pub fn log(&self) -> PathBuf {
        self.root.join(LOG_DIR)
    }
    pub fn projections(&self) -> PathBuf {
        self.root.join(PROJECTIONS_DIR)
    }
    pub fn secrets(&self) -> PathBuf {
        self.root.join(SECRETS_FILE)
    }
    pub fn attachments(&self) -> PathBuf {
        self.root.join(ATTACHMENTS_DIR)
    }
}

/// How far back a point-in-time replay or restore goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Until {
    /// The whole log.
    End,
    /// Every record committed at or before this time (epoch ms).
    Time(u64),
    /// Records up to and including this offset.
    Offset(eventlog::Offset),
}

impl Until {
    /// Whether a record belongs to the state asked for.
    pub fn includes(&self, offset: eventlog::Offset, ts_ms: u64) -> bool {
        match *self {
            Until::End => true,
            Until::Time(t) => ts_ms <= t,
            Until::Offset(o) => offset <= o,
        }
    }

    /// From `--until TIME` and `--until-offset N` (at most one).
    pub fn from_args(time: Option<&str>, offset: Option<u64>) -> Result<Until, ToolError> {
        match (time, offset) {
            (Some(_), Some(_)) => Err(ToolError::Usage(
                "give --until or --until-offset, not both".into(),
            )),
            (Some(t), None) => Ok(Until::Time(time::parse_time(t)?)),
            (None, Some(o)) => Ok(Until::Offset(o)),
            (None, None) => Ok(Until::End),
        }
    }
}

/// Refuses a target directory that exists and is not empty (a file, or a
/// directory with anything in it): restore and replay never overwrite.
pub fn check_empty_target(dir: &Path) -> Result<(), ToolError> {
    match std::fs::read_dir(dir) {
        Ok(mut rd) => match rd.next() {
            None => Ok(()),
            Some(_) => Err(ToolError::Refused(format!(
                "{} is not empty: give a new or empty directory (nothing was written)",
                dir.display()
            ))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotADirectory => Err(ToolError::Refused(
            format!("{} exists and is not a directory", dir.display()),
        )),
        Err(e) => Err(ToolError::io(format!("reading {}", dir.display()), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn until_includes() {
        assert!(Until::End.includes(9, 9));
        assert!(Until::Time(10).includes(99, 10));
        assert!(!Until::Time(10).includes(1, 11));
        assert!(Until::Offset(3).includes(3, u64::MAX));
        assert!(!Until::Offset(3).includes(4, 0));
        assert!(Until::from_args(Some("1"), Some(1)).is_err());
        assert_eq!(
            Until::from_args(Some("2025-01-01"), None).unwrap(),
            Until::Time(1_735_689_600_000)
        );
    }

    #[test]
    fn empty_target_rules() {
        let dir = tempfile::tempdir().unwrap();
        check_empty_target(dir.path()).unwrap();
        check_empty_target(&dir.path().join("new")).unwrap();
        std::fs::write(dir.path().join("f"), b"x").unwrap();
        assert_eq!(check_empty_target(dir.path()).unwrap_err().exit_code(), 4);
        assert_eq!(
            check_empty_target(&dir.path().join("f"))
                .unwrap_err()
                .exit_code(),
            4
        );
    }
}
