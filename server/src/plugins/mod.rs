//! Kinto's plugins as built-in features, switched on by `includes`:
//! accounts, history, the permissions endpoint, flush, metrics,
//! attachments. The core calls these hooks; each plugin lives in its own
//! module.
//!
//! Hooks:
//! - [`resolve`]: URL paths (below `/v1`) that a plugin serves.
//! - [`handle`]: serves such a path.
//! - [`authenticate`]: plugin authentication tried before Basic Auth.
//! - [`capabilities`]: entries for `GET /v1/` `capabilities`.

use serde_json::{Map, Value};

use crate::errors::ApiError;
use crate::request::Ctx;
use crate::response::Reply;
use crate::state::AppState;

/// A path served by a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRoute {}

/// Which plugin serves `rest` (the path after `/v1`, e.g. `/accounts/bob`).
pub fn resolve(_rest: &str) -> Option<PluginRoute> {
    None
}

/// Serves a plugin path.
pub async fn handle(_state: &AppState, _ctx: &Ctx, route: PluginRoute) -> Result<Reply, ApiError> {
    match route {}
}

/// Authenticates with a plugin's policy (accounts) before Basic Auth:
/// `Some(user_id)` when it recognizes the caller.
pub async fn authenticate(
    _state: &AppState,
    _authorization: Option<&axum::http::HeaderValue>,
) -> Result<Option<String>, ApiError> {
    Ok(None)
}

/// Capabilities the enabled plugins add to `GET /v1/`.
pub fn capabilities(_state: &AppState) -> Map<String, Value> {
    Map::new()
}
