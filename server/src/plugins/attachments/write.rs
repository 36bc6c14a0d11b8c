//! The record write of `POST` and `DELETE …/attachment`, run by the
//! sequencer: load the record (creating the personal bucket under
//! `default`), check kinto-attachment's permission rule and the
//! preconditions at sequencing time, then write the record with its new
//! `attachment` field as one event.

use axum::http::StatusCode;
use projections::{Permissions, Resource, StoredObject};
use serde_json::{Map, Value};

use super::upload;
use crate::access::{Access, Loaded, Target};
use crate::body::{check_body_id, parse_envelope, requested_timestamp, Envelope, PatchKind};
use crate::errors::{ApiError, Location};
use crate::headers::Precondition;
use crate::ids::is_valid_id;
use crate::patch::PatchRequest;
use crate::permissions::Need;
use crate::personal_bucket::{ensure_in_txn, DefaultScope};
use crate::request::{Conditions, Identity};
use crate::schema::validate_write;
use crate::sequencer::{Outcome, Txn, TxnError};
use crate::state::AppState;

/// `data` and `permissions` of the form as the record write uses them: an
/// envelope (for a record created) and a plain PATCH (for one updated),
/// the file's metadata in `data.attachment`.
pub fn fields(up: &upload::Upload) -> Result<(Envelope, PatchRequest), ApiError> {
    let mut body = Map::new();
    body.insert(
        "data".into(),
        up.data.clone().unwrap_or_else(|| Value::Object(Map::new())),
    );
    if let Some(p) = &up.permissions {
        body.insert("permissions".into(), p.clone());
    }
    // Shapes as a record body: `data` an object, known permission names.
    let env = parse_envelope(Value::Object(body.clone()), Resource::Record)?;
    let patch = PatchRequest::parse(PatchKind::Plain, Value::Object(body), Resource::Record)?;
    Ok((env, patch))
}

/// What a write closure needs, owned so the closure can be re-run.
#[derive(Debug, Clone)]
pub struct WriteCtx {
    pub target: Target,
    pub scope: DefaultScope,
    pub identity: Identity,
    pub bucket_create_principals: Vec<String>,
    pub schemas: std::sync::Arc<crate::schema::SchemaCache>,
    pub conds: Conditions,
}

impl WriteCtx {
    fn access(&self) -> Access<'_> {
        Access {
            identity: &self.identity,
            bucket_create_principals: &self.bucket_create_principals,
        }
    }

    pub fn id(&self) -> &str {
        self.target.id.as_deref().unwrap_or_default()
    }

    /// kinto-attachment's rule: `write` on the record if it exists, else
    /// `record:create` on the collection.
    fn may_write(&self, loaded: &Loaded) -> bool {
        let access = self.access();
        match loaded.object {
            Some(_) => access.allows(loaded, &self.target, Need::Write),
            None => access.can_create(loaded, &self.target),
        }
    }

    /// The permission check on the committed state, before the body is
    /// read into a file. (A personal bucket still to be created is the
    /// caller's: nothing to check.)
    pub fn precheck(&self, state: &AppState) -> Result<(), ApiError> {
        if self.scope.user_id.is_some() {
            return Ok(());
        }
        let loaded = self.access().load(&mut &*state.projections, &self.target)?;
        if self.may_write(&loaded) {
            Ok(())
        } else {
            Err(self.identity.denied())
        }
    }

    /// Loads the record (creating the personal bucket if the URL says
    /// `default`), checks permissions, the id and If-Match / If-None-Match.
    fn load(&self, txn: &mut Txn<'_>) -> Result<Loaded, TxnError> {
        ensure_in_txn(txn, &self.scope)?;
        let access = self.access();
        let loaded = access.load(txn, &self.target)?;
        if !self.may_write(&loaded) {
            return Err(self.identity.denied().into());
        }
        match &loaded.object {
            Some(obj) => {
                let stale = matches!(self.conds.if_match, Some(Precondition::Timestamp(t)) if t != obj.last_modified)
                    || self.conds.if_none_match == Some(Precondition::Any);
                if stale {
                    let existing = access
                        .allows(&loaded, &self.target, Need::Read)
                        .then(|| Value::Object(obj.data.clone()));
                    return Err(ApiError::precondition_failed(existing, obj.last_modified).into());
                }
            }
            None => {
                if !is_valid_id(self.id()) {
                    return Err(ApiError::invalid(Location::Path, None, "Invalid object id").into());
                }
                if self.conds.if_match.is_some() {
                    let current =
                        txn.list_timestamp(&self.target.parent(), self.target.resource)?;
                    return Err(ApiError::precondition_failed(None, current).into());
                }
            }
        }
        Ok(loaded)
    }

    /// Writes the record's new state (the caller added to `write`, as
    /// every write does).
    fn put(
        &self,
        txn: &mut Txn<'_>,
        loaded: &Loaded,
        mut data: Map<String, Value>,
        mut perms: Permissions,
    ) -> Result<StoredObject, TxnError> {
        let id = self.id();
        check_body_id(&data, id)?;
        let requested = requested_timestamp(&data).filter(|t| {
            loaded
                .object
                .as_ref()
                .is_none_or(|obj| *t > obj.last_modified)
        });
        data.remove("id");
        data.remove("last_modified");
        validate_write(&self.schemas, loaded, &self.target, &mut data)?;
        if let Some(uid) = &self.identity.user_id {
            let writers = perms.entry("write".to_owned()).or_default();
            if !writers.contains(uid) {
                writers.push(uid.clone());
            }
        }
        txn.put(&self.target.key_for(id), data, perms, requested)
    }
}

/// The write of a `POST …/attachment`.
#[derive(Debug, Clone)]
pub struct PostOp {
    pub w: WriteCtx,
    pub env: Envelope,
    pub patch: PatchRequest,
    pub meta: Map<String, Value>,
}

impl PostOp {
    pub fn run(&self, txn: &mut Txn<'_>) -> Result<Outcome, TxnError> {
        let loaded = self.w.load(txn)?;
        let (mut data, perms, status) = match &loaded.object {
            Some(obj) => {
                let (d, p) = self.patch.apply(obj, Resource::Record)?;
                (d, p, StatusCode::OK)
            }
            None => (
                self.env.data.clone().unwrap_or_default(),
                self.env.permissions.clone().unwrap_or_default(),
                StatusCode::CREATED,
            ),
        };
        data.insert(upload::FILE_FIELD.into(), Value::Object(self.meta.clone()));
        let stored = self.w.put(txn, &loaded, data, perms)?;
        Ok(Outcome {
            headers: Vec::new(),
            status,
            body: Value::Object(self.meta.clone()),
            timestamp: Some(stored.last_modified),
        })
    }
}

/// The write of a `DELETE …/attachment`: `attachment: null` (on a record
/// created for the purpose if there was none, as kinto-attachment does).
pub fn delete_op(txn: &mut Txn<'_>, w: &WriteCtx) -> Result<Outcome, TxnError> {
    let loaded = w.load(txn)?;
    let (mut data, perms) = match &loaded.object {
        Some(obj) => (obj.data.clone(), obj.permissions.clone()),
        None => (Map::new(), Permissions::new()),
    };
    data.insert(upload::FILE_FIELD.into(), Value::Null);
    let stored = w.put(txn, &loaded, data, perms)?;
    Ok(Outcome {
        headers: Vec::new(),
        status: StatusCode::NO_CONTENT,
        body: Value::Null,
        timestamp: Some(stored.last_modified),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn record_fields_are_checked_as_a_body() {
        let up = |data: Option<Value>, permissions: Option<Value>| upload::Upload {
            filename: "a.txt".into(),
            mimetype: "text/plain".into(),
            bytes: bytes::Bytes::from_static(b"x"),
            data,
            permissions,
        };
        let (env, _) = fields(&up(Some(json!({"a": 1})), Some(json!({"read": ["x"]})))).unwrap();
        assert_eq!(Value::Object(env.data.unwrap()), json!({"a": 1}));
        assert_eq!(env.permissions.unwrap()["read"], vec!["x".to_owned()]);
        let err = fields(&up(Some(json!([1])), None)).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = fields(&up(None, Some(json!({"bogus": ["x"]})))).unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
    }
}
