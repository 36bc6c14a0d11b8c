//! `POST /__flush__` (`kinto.plugins.flush`): empties the server, accounts
//! included. For tests and staging: there is no permission check at all,
//! as in Kinto.
//!
//! The log is append-only, so the flush is itself a commit in it: a Delete
//! of every bucket (cascading to everything below) and of every account,
//! in one record. A flushed server keeps its list timestamps (they never
//! go back) and the tombstones of what the flush deleted; Kinto's flush
//! forgets both.

use axum::http::{Method, StatusCode};
use projections::{ObjectKey, Resource};
use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::request::Ctx;
use crate::response::{Exposure, Reply};
use crate::sequencer::Outcome;
use crate::state::AppState;

pub async fn handle(state: &AppState, ctx: &Ctx) -> Result<Reply, ApiError> {
    if ctx.method == Method::OPTIONS {
        return crate::root::preflight(ctx, "POST, OPTIONS");
    }
    if ctx.method != Method::POST {
        return Err(ApiError::method_not_allowed("POST, OPTIONS"));
    }
    state
        .sequencer
        .submit(
            ctx.request_id.clone(),
            ctx.identity.user_id.clone(),
            Box::new(|txn| {
                // Scans committed state: alone in its group.
                txn.require_alone()?;
                let mut keys = Vec::new();
                for resource in [Resource::Bucket, Resource::Account] {
                    for obj in txn.projections().list("", resource, None) {
                        let obj = obj?;
                        if let Some(id) = obj.data.get("id").and_then(Value::as_str) {
                            keys.push(ObjectKey {
                                parent: String::new(),
                                resource,
                                id: id.to_owned(),
                            });
                        }
                    }
                }
                for key in &keys {
                    txn.delete(key, None)?;
                }
                Ok(Outcome {
                    headers: Vec::new(),
                    status: StatusCode::ACCEPTED,
                    body: json!({}),
                    timestamp: None,
                })
            }),
        )
        .await?;
    state.plugins.accounts.clear();
    tracing::warn!(request_id = %ctx.request_id, "server flushed (POST /__flush__)");
    Ok(Reply::json(
        StatusCode::ACCEPTED,
        json!({}),
        None,
        Exposure::Basic,
    ))
}
