//! What every request handler shares: settings, the projections to read,
//! the log to read `_since` answers from, and the sequencer to write through.

use std::sync::Arc;

use eventlog::LogReader;
use projections::Projections;

use crate::sequencer::Sequencer;
use crate::settings::Settings;

#[derive(Debug, Clone)]
pub struct AppState {
    pub inner: Arc<Shared>,
}

#[derive(Debug)]
pub struct Shared {
    pub settings: Settings,
    /// Materialized views; read directly by every request, written only by
    /// the sequencer thread.
    pub projections: Arc<Projections>,
    pub log: LogReader,
    pub sequencer: Sequencer,
    /// The plugins' in-memory state (account checks, metrics, history index).
    pub plugins: Arc<crate::plugins::Plugins>,
    /// Group memberships of callers, cached per projections generation.
    pub memberships: crate::membership::Memberships,
    /// Compiled JSON Schemas, used by write closures.
    pub schemas: Arc<crate::schema::SchemaCache>,
    /// When this process started (epoch ms): the timestamp of lists never
    /// written.
    pub started_ms: u64,
}

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.inner
    }
}
