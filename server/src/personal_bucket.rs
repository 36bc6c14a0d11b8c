//! The personal `default` bucket (plugin `default_bucket`): any request
//! under `/buckets/default` first creates the caller's bucket, and under
//! `/buckets/default/collections/{cid}` that collection too — reads
//! included, as the reference does.

use axum::http::StatusCode;
use projections::ObjectKey;
use serde_json::{json, Map};

use crate::errors::ApiError;
use crate::request::Ctx;
use crate::sequencer::{Outcome, Txn, TxnError};
use crate::state::AppState;

/// What a `/buckets/default/…` URL implies must exist.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultScope {
    /// The caller (always set when `bucket` is).
    pub user_id: Option<String>,
    /// The caller's personal bucket id, when the URL said `default`.
    pub bucket: Option<String>,
    /// The collection under it the URL names, if any.
    pub collection: Option<String>,
}

impl DefaultScope {
    fn keys(&self) -> Vec<ObjectKey> {
        let Some(b) = &self.bucket else {
            return Vec::new();
        };
        let mut keys = vec![ObjectKey::bucket(b)];
        if let Some(c) = &self.collection {
            keys.push(ObjectKey::collection(b, c));
        }
        keys
    }

    /// On the read path: if something is missing, create it through the
    /// sequencer before reading.
    pub async fn ensure(&self, state: &AppState, ctx: &Ctx) -> Result<(), ApiError> {
        let mut missing = false;
        for k in self.keys() {
            if state
                .projections
                .get(&k)
                .map_err(ApiError::internal)?
                .is_none()
            {
                missing = true;
            }
        }
        if !missing {
            return Ok(());
        }
        let scope = self.clone();
        state
            .sequencer
            .submit(
                ctx.request_id.clone(),
                ctx.identity.user_id.clone(),
                Box::new(move |txn| {
                    ensure_in_txn(txn, &scope)?;
                    Ok(Outcome {
                        headers: Vec::new(),
                        status: StatusCode::OK,
                        body: json!({}),
                        timestamp: None,
                    })
                }),
            )
            .await?;
        Ok(())
    }
}

/// Inside a write: creates the personal bucket / collection if missing, with
/// the caller as writer.
pub fn ensure_in_txn(txn: &mut Txn<'_>, scope: &DefaultScope) -> Result<(), TxnError> {
    let Some(uid) = &scope.user_id else {
        return Ok(());
    };
    for key in scope.keys() {
        if txn.get(&key)?.is_none() {
            let mut perms = projections::Permissions::new();
            perms.insert("write".into(), vec![uid.clone()]);
            txn.put(&key, Map::new(), perms, None)?;
        }
    }
    Ok(())
}
