//! History (`kinto.plugins.history`): `/buckets/{bid}/history`.

use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::request::Ctx;
use crate::response::Reply;
use crate::settings::Settings;
use crate::state::AppState;

/// Per-bucket index of the log.
#[derive(Debug, Default)]
pub struct Index {}

pub fn capability(_s: &Settings) -> Value {
    json!({
        "description": "Track changes on data.",
        "url": "http://kinto.readthedocs.io/en/latest/api/1.x/history.html",
    })
}

pub async fn handle(_state: &AppState, _ctx: &Ctx, _bid: &str) -> Result<Reply, ApiError> {
    Err(ApiError::unknown_url())
}
