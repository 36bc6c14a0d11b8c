//! `cairn serve`: opens the log and the projections, starts the sequencer,
//! binds the port, and shuts down gracefully on SIGTERM / Ctrl-C: stop
//! accepting, finish in-flight requests (and so their writes), let the
//! sequencer drain and flush, then exit.

use std::net::SocketAddr;
use std::sync::Arc;

use eventlog::{Log, LogOptions};
use projections::Projections;
use tokio::net::TcpListener;

use crate::app::router;
use crate::sequencer::Sequencer;
use crate::settings::Settings;
use crate::state::{AppState, Shared};

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("log: {0}")]
    Log(#[from] eventlog::LogError),
    #[error("projections: {0}")]
    Projections(#[from] projections::ProjectionError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
}

/// Subdirectory of the data directory holding the event log.
pub const LOG_DIR: &str = "log";
/// Subdirectory of the data directory holding the projections (disposable).
pub const PROJECTIONS_DIR: &str = "projections";

/// Runs the server until a shutdown signal.
pub async fn run(settings: Settings) -> Result<(), StartError> {
    std::fs::create_dir_all(&settings.data_dir)?;
    let log = Log::open(&settings.data_dir.join(LOG_DIR), LogOptions::default())?;
    let reader = log.reader();
    let projections = Arc::new(Projections::open(
        &settings.data_dir.join(PROJECTIONS_DIR),
        &reader,
    )?);
    let (sequencer, seq_thread) = Sequencer::start(log, projections.clone());
    let started_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let addr = format!("{}:{}", settings.host, settings.port);
    let listener = TcpListener::bind(&addr)
        .await
        .map_err(|source| StartError::Bind {
            addr: addr.clone(),
            source,
        })?;
    let local: SocketAddr = listener.local_addr()?;
    tracing::info!(%local, data = %settings.data_dir.display(), "cairn listening");
    if !settings.unknown.is_empty() {
        tracing::warn!(settings = ?settings.unknown, "unknown settings ignored");
    }
    crate::plugins::report_settings(&settings);
    let state = AppState {
        inner: Arc::new(Shared {
            settings,
            projections,
            log: reader,
            sequencer,
            plugins: Arc::default(),
            schemas: Arc::default(),
            memberships: Default::default(),
            started_ms,
        }),
    };
    let app = router(state);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await?;
    // Every handler (and so every Sequencer handle) is gone: the sequencer
    // answers what it holds, flushes the projections and stops.
    let _ = tokio::task::spawn_blocking(move || seq_thread.join()).await;
    tracing::info!("cairn stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
