//! The one error type of the tools, and the exit status each kind maps to.
//!
//! Exit statuses are API for scripts (cron jobs, backup checks), so they
//! are decided here, in one table, and documented in `docs/operations.md`:
//!
//! | status | meaning |
//! |---|---|
//! | 0 | success |
//! | 1 | I/O or other failure (disk full, permission denied, …) |
//! | 2 | bad usage: an argument, a time or a checkpoint that does not parse |
//! | 3 | verification failed: a damaged log, a checkpoint the log does not extend, a corrupt or truncated snapshot |
//! | 4 | refused: the target directory is not empty, the output file exists |

use std::path::PathBuf;

use eventlog::Offset;

/// What went wrong in a tool. Each variant says what the operator can do
/// about it; the display text is printed as is after `cairn: `.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ToolError {
    /// A command-line value that does not parse.
    #[error("{0}")]
    Usage(String),

    /// The log is damaged at `offset`: the first record that is not what
    /// the format and the chain say it must be.
    #[error("log damaged at offset {offset} (segment {segment}): {reason}")]
    Damaged {
        segment: String,
        offset: Offset,
        reason: String,
    },

    /// The log does not extend a checkpoint taken earlier.
    #[error("checkpoint mismatch: {0}")]
    Checkpoint(String),

    /// A snapshot file that is not a whole, intact Cairn snapshot.
    #[error("bad snapshot {path}: {reason}")]
    BadSnapshot { path: PathBuf, reason: String },

    /// An operation that would overwrite something.
    #[error("{0}")]
    Refused(String),

    /// The data directory has no log.
    #[error("no event log in {0} (is --data the server's data directory?)")]
    NoLog(PathBuf),

    /// A record whose payload does not decode as Cairn events.
    #[error("record {offset}: {reason}")]
    Payload { offset: Offset, reason: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },

    #[error("event log: {0}")]
    Log(#[from] eventlog::LogError),

    #[error("projections: {0}")]
    Projections(#[from] projections::ProjectionError),

    /// The reader of our output went away (`cairn log show | head`): not
    /// an error for the user.
    #[error("output closed")]
    BrokenPipe,
}

impl ToolError {
    /// An I/O error with what was being done, e.g. "reading /x/y.seg".
    pub fn io(context: impl Into<String>, source: std::io::Error) -> ToolError {
        if source.kind() == std::io::ErrorKind::BrokenPipe {
            return ToolError::BrokenPipe;
        }
        ToolError::Io {
            context: context.into(),
            source,
        }
    }

    /// A closure for `map_err` that adds a path to an I/O error.
    pub fn at(
        what: &'static str,
        path: &std::path::Path,
    ) -> impl FnOnce(std::io::Error) -> ToolError {
        let context = format!("{what} {}", path.display());
        move |e| ToolError::io(context, e)
    }

    /// Writing to stdout failed.
    pub fn output(e: std::io::Error) -> ToolError {
        ToolError::io("writing the output", e)
    }

    pub fn bad_snapshot(path: &std::path::Path, reason: impl Into<String>) -> ToolError {
        ToolError::BadSnapshot {
            path: path.to_path_buf(),
            reason: reason.into(),
        }
    }

    /// The process exit status for this error (see the module table).
    pub fn exit_code(&self) -> u8 {
        match self {
            ToolError::BrokenPipe => 0,
            ToolError::Usage(_) => 2,
            ToolError::Damaged { .. }
            | ToolError::Checkpoint(_)
            | ToolError::BadSnapshot { .. }
            | ToolError::Payload { .. } => 3,
            ToolError::Refused(_) => 4,
            ToolError::NoLog(_)
            | ToolError::Io { .. }
            | ToolError::Log(_)
            | ToolError::Projections(_) => 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_table() {
        let io = || std::io::Error::other("x");
        assert_eq!(ToolError::Usage("x".into()).exit_code(), 2);
        assert_eq!(
            ToolError::Damaged {
                segment: "s".into(),
                offset: 3,
                reason: "r".into()
            }
            .exit_code(),
            3
        );
        assert_eq!(ToolError::Checkpoint("x".into()).exit_code(), 3);
        assert_eq!(ToolError::bad_snapshot("/f".as_ref(), "x").exit_code(), 3);
        assert_eq!(ToolError::Refused("x".into()).exit_code(), 4);
        assert_eq!(ToolError::io("x", io()).exit_code(), 1);
        assert_eq!(
            ToolError::io("x", std::io::Error::from(std::io::ErrorKind::BrokenPipe)).exit_code(),
            0
        );
    }

    #[test]
    fn damage_names_the_offset() {
        let e = ToolError::Damaged {
            segment: "00000000000000000001.seg".into(),
            offset: 42,
            reason: "crc mismatch".into(),
        };
        assert!(e.to_string().contains("offset 42"), "{e}");
    }
}
