//! The one error type of the log, and how an error is handed to many waiters.

use std::path::PathBuf;

use crate::Offset;

/// Everything the log can fail with.
///
/// `Corrupt` always names the segment file and the offset so that an operator
/// can find the damage; the log never skips or truncates such damage itself.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LogError {
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    #[error("corrupt log in {segment} at offset {offset}: {reason}")]
    Corrupt {
        segment: PathBuf,
        offset: Offset,
        reason: String,
    },
    #[error("log writer is poisoned by an earlier failed write or sync: {0}")]
    Poisoned(String),
    #[error("record too large: {0} bytes")]
    TooLarge(usize),
    #[error("no record at offset {0}")]
    NotFound(Offset),
    /// The writer side (`Log` or `GroupCommitter`) is gone: no record will
    /// ever arrive for a tailing reader, and no append can be accepted.
    #[error("the log writer has shut down")]
    Closed,
    /// Another process holds the data directory's `LOCK` file.
    #[error("log directory {0} is locked by another process")]
    Locked(PathBuf),
}

impl LogError {
    /// A copy of this error for a second receiver.
    ///
    /// `io::Error` is not `Clone`, yet a failed group write must reach every
    /// appender of the batch with its cause: the copy keeps the kind and the
    /// message.
    pub fn duplicate(&self) -> LogError {
        match self {
            LogError::Io(e) => LogError::Io(std::io::Error::new(e.kind(), e.to_string())),
            LogError::Corrupt {
                segment,
                offset,
                reason,
            } => LogError::Corrupt {
                segment: segment.clone(),
                offset: *offset,
                reason: reason.clone(),
            },
            LogError::Poisoned(s) => LogError::Poisoned(s.clone()),
            LogError::TooLarge(n) => LogError::TooLarge(*n),
            LogError::NotFound(o) => LogError::NotFound(*o),
            LogError::Closed => LogError::Closed,
            LogError::Locked(p) => LogError::Locked(p.clone()),
        }
    }
}
