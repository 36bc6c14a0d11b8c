//! The crate's one error type.

/// Everything that can go wrong in the projections.
///
/// `Decode` and `Corrupt` are kept apart on purpose: the first means the
/// *log* holds something this code cannot read (a rebuild will not help; an
/// upcaster or a fix is needed), the second means the *projection store*
/// holds something unexpected (a rebuild from the log fixes it).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProjectionError {
    /// The projection store (fjall) failed: I/O, or its own corruption report.
    #[error("projection store: {0}")]
    Store(#[from] fjall::Error),
    /// The log failed while the projections read it.
    #[error("log: {0}")]
    Log(#[from] eventlog::LogError),
    /// A log record could not be decoded into a [`crate::Commit`].
    #[error("undecodable event at log offset {offset}: {reason}")]
    Decode { offset: u64, reason: String },
    /// A key or value in the projection store is not what this code wrote.
    #[error("corrupt projection entry {key}: {reason}")]
    Corrupt { key: String, reason: String },
    /// `apply` was given a commit that does not follow the applied one:
    /// log offsets are dense, so a commit in between was never applied.
    /// The views are left as they were; a restart replays the log.
    #[error("commit at log offset {next} does not follow the applied offset {applied}")]
    Gap { applied: u64, next: u64 },
    /// Renaming, creating or removing the projection directory failed.
    #[error("projection directory: {0}")]
    Io(#[from] std::io::Error),
}

impl ProjectionError {
    pub(crate) fn corrupt(key: &[u8], reason: impl std::fmt::Display) -> Self {
        ProjectionError::Corrupt {
            key: crate::keys::render(key),
            reason: reason.to_string(),
        }
    }
}
