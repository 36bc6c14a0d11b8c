//! Accounts (`kinto.plugins.accounts`): `/accounts` and `/accounts/{id}`,
//! the `account:<id>` users, and the password check behind them.
//!
//! An account is an object of kind [`Resource::Account`] (parent `""`, URI
//! `/accounts/{id}`) whose `password` is a bcrypt hash (`$2b$12$…`, what
//! Kinto stores, so a Kinto operator's hashes verify here). Only the hash
//! is ever written to the log; the clear password lives in the request.
//!
//! Who may do what (spec `api-around.md` 1.3, checked against Kinto 26.5):
//!
//! * `account_create_principals` may create accounts (sign up);
//! * `account_write_principals` are administrators: they reach every
//!   account; listing them all also needs `account_read_principals`;
//! * everybody else reaches only their own account (`account:<id>` is in
//!   its `write`): another id is "not found" to them (a 403 when they may
//!   not even read it), and creating it answers "Username and account ID do
//!   not match.".
//!
//! Every handler has the shape of `objects.rs`: parse, hash a new password
//! on a blocking thread, then one closure for the sequencer that loads the
//! account, decides, and records the event.
//!
//! Deleting an account also removes `account:<id>` from every ACL and every
//! group that names it, in the same commit (Kinto leaves them, so whoever
//! registers the same name later inherits those rights).

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderValue, Method, StatusCode};
use projections::{ObjectKey, Permissions, Resource, StoredObject};
use serde_json::{json, Map, Value};

use crate::body::{check_json_content_type, parse_envelope, parse_json, patch_kind};
use crate::errors::{ApiError, Location};
use crate::headers::Precondition;
use crate::listing::ListQuery;
use crate::objects::tombstone;
use crate::patch::{PatchRequest, ResponseBehavior};
use crate::request::{Conditions, Ctx, Identity};
use crate::response::{Exposure, Reply};
use crate::sequencer::{Outcome, Txn, TxnError};
use crate::state::AppState;

/// User id prefix of accounts.
pub const PREFIX: &str = "account:";
/// `Allow` of `/accounts`.
const PLURAL_METHODS: &str = "HEAD, GET, POST, DELETE, OPTIONS";
/// `Allow` of `/accounts/{id}`.
const OBJECT_METHODS: &str = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";

/// Does `id` match Kinto's account id rule `^[a-zA-Z0-9][+.@a-zA-Z0-9_-]*$`
/// (e-mail addresses are valid)?
pub fn is_valid_account_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'.' | b'@' | b'_' | b'-'))
}

// ---- password checks -------------------------------------------------------

/// Successful password checks, so that only the first request of a session
/// pays for bcrypt (~0.3 s at cost 12). Keyed by account id; an entry holds
/// a keyed blake3 of `id NUL password` (never the password: the key is
/// random per process) and of the bcrypt hash it was checked against, so a
/// changed or deleted account never matches an old entry even if a check
/// finishes after the change. Entries live `account_cache_ttl_seconds`,
/// refreshed on use (Kinto's sliding TTL), and are dropped when the account
/// changes.
///
/// A std `Mutex` is enough: it is held for map operations only, never
/// across an `.await` or a bcrypt run.
pub struct VerifiedCache {
    key: [u8; 32],
    entries: Mutex<HashMap<String, Verified>>,
}

#[derive(Clone, Copy)]
struct Verified {
    proof: [u8; 32],
    hash: [u8; 32],
    expires: Instant,
}

impl std::fmt::Debug for VerifiedCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.entries.lock().map(|e| e.len()).unwrap_or(0);
        f.debug_struct("VerifiedCache")
            .field("entries", &n)
            .finish_non_exhaustive()
    }
}

impl Default for VerifiedCache {
    fn default() -> Self {
        use rand::RngCore;
        let mut key = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut key);
        VerifiedCache {
            key,
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl VerifiedCache {
    fn proof(&self, user: &str, password: &str) -> [u8; 32] {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        h.update(user.as_bytes());
        h.update(&[0]);
        h.update(password.as_bytes());
        *h.finalize().as_bytes()
    }

    fn fingerprint(&self, bcrypt_hash: &str) -> [u8; 32] {
        *blake3::keyed_hash(&self.key, bcrypt_hash.as_bytes()).as_bytes()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Verified>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Was this password checked against this hash recently? Refreshes the
    /// entry's lifetime when it was.
    fn hit(&self, user: &str, password: &str, bcrypt_hash: &str, ttl: Duration) -> bool {
        let proof = self.proof(user, password);
        let hash = self.fingerprint(bcrypt_hash);
        let now = Instant::now();
        let mut entries = self.lock();
        match entries.get_mut(user) {
            Some(v) if v.expires > now && v.proof == proof && v.hash == hash => {
                v.expires = now + ttl;
                true
            }
            Some(v) if v.expires <= now => {
                entries.remove(user);
                false
            }
            _ => false,
        }
    }

    fn remember(&self, user: &str, password: &str, bcrypt_hash: &str, ttl: Duration) {
        let v = Verified {
            proof: self.proof(user, password),
            hash: self.fingerprint(bcrypt_hash),
            expires: Instant::now() + ttl,
        };
        let mut entries = self.lock();
        if entries.len() > 100_000 {
            let now = Instant::now();
            entries.retain(|_, v| v.expires > now);
        }
        entries.insert(user.to_owned(), v);
    }

    /// Forgets the account's checks (its password or existence changed).
    pub fn forget(&self, user: &str) {
        self.lock().remove(user);
    }

    /// Forgets everything (flush).
    pub fn clear(&self) {
        self.lock().clear();
    }
}

/// The accounts policy: `Some("account:<id>")` when the Basic credentials
/// are an account's id and password. Anything else (no such account, wrong
/// password) is `None`, so that the next policy is tried: with
/// `account basicauth`, a wrong password makes the request a Basic Auth
/// user (Kinto's behaviour, spec 1.2).
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&HeaderValue>,
) -> Result<Option<String>, ApiError> {
    let Some((user, password)) = authorization.and_then(crate::auth::basic_credentials_of) else {
        return Ok(None);
    };
    if !is_valid_account_id(&user) {
        return Ok(None);
    }
    let Some(account) = state
        .projections
        .get(&ObjectKey::account(&user))
        .map_err(ApiError::internal)?
    else {
        return Ok(None);
    };
    let Some(hash) = account.data.get("password").and_then(Value::as_str) else {
        return Ok(None);
    };
    let hash = hash.to_owned();
    let cache = &state.plugins.accounts;
    let ttl = Duration::from_secs(state.settings.account_cache_ttl_seconds);
    if cache.hit(&user, &password, &hash, ttl) {
        return Ok(Some(format!("{PREFIX}{user}")));
    }
    let (pw, h) = (password.clone(), hash.clone());
    let ok =
        tokio::task::spawn_blocking(move || bcrypt::non_truncating_verify(pw, &h).unwrap_or(false))
            .await
            .map_err(ApiError::internal)?;
    if !ok {
        return Ok(None);
    }
    cache.remember(&user, &password, &hash, ttl);
    Ok(Some(format!("{PREFIX}{user}")))
}

/// bcrypt at Kinto's cost (12), on a blocking thread.
async fn hash_password(password: String) -> Result<String, ApiError> {
    tokio::task::spawn_blocking(move || bcrypt::non_truncating_hash(password, bcrypt::DEFAULT_COST))
        .await
        .map_err(ApiError::internal)?
        .map_err(|e| match e {
            bcrypt::BcryptError::Truncation(_) => ApiError::invalid(
                Location::Body,
                Some("data.password"),
                "password cannot be longer than 72 bytes",
            ),
            other => ApiError::internal(other),
        })
}

/// The same, for the command line (no runtime).
pub fn hash_password_blocking(password: &str) -> Result<String, bcrypt::BcryptError> {
    bcrypt::non_truncating_hash(password, bcrypt::DEFAULT_COST)
}

// ---- who may do what -------------------------------------------------------

/// The caller as the accounts plugin sees them, with the settings that
/// decide their rights. Owned: it travels into sequencer closures.
#[derive(Debug, Clone)]
struct Caller {
    identity: Identity,
    /// The raw user id (`bob` for `account:bob`, the HMAC for Basic Auth).
    selected: Option<String>,
    admin: bool,
    reads_all: bool,
    can_create: bool,
}

impl Caller {
    fn new(state: &AppState, identity: &Identity) -> Caller {
        let s = &state.settings;
        let has = |list: &[String]| identity.principals.iter().any(|p| list.contains(p));
        let admin = has(&s.account_write_principals);
        Caller {
            identity: identity.clone(),
            selected: identity
                .user_id
                .as_deref()
                .map(|u| u.split_once(':').map_or(u, |(_, raw)| raw).to_owned()),
            admin,
            reads_all: has(&s.account_read_principals),
            can_create: admin || has(&s.account_create_principals),
        }
    }

    fn named_in(&self, acl: &Permissions, perm: &str) -> bool {
        acl.get(perm)
            .is_some_and(|l| l.iter().any(|p| self.identity.principals.contains(p)))
    }

    fn can_write(&self, obj: &StoredObject) -> bool {
        self.admin || self.named_in(&obj.permissions, "write")
    }

    fn can_read(&self, obj: &StoredObject) -> bool {
        self.can_write(obj) || self.reads_all || self.named_in(&obj.permissions, "read")
    }

    /// Non-administrators who are logged in only reach their own account.
    fn confined_away_from(&self, id: &str) -> bool {
        !self.admin && self.selected.as_deref().is_some_and(|me| me != id)
    }

    fn denied(&self) -> ApiError {
        self.identity.denied()
    }

    /// Creating `id`: allowed to create at all, and (unless administrator)
    /// only one's own account once logged in.
    fn check_create(&self, id: &str) -> Result<(), ApiError> {
        if !self.can_create {
            return Err(self.denied());
        }
        if self.confined_away_from(id) {
            return Err(ApiError::invalid(
                Location::Body,
                Some("data.id"),
                "Username and account ID do not match.",
            ));
        }
        Ok(())
    }
}

/// The account as this caller may see it: `None` when it is out of their
/// reach (then `missing` says what to answer).
fn visible(txn_obj: Option<StoredObject>, caller: &Caller, id: &str) -> Option<StoredObject> {
    if caller.confined_away_from(id) {
        None
    } else {
        txn_obj
    }
}

/// The answer for an account the caller cannot reach: 404 for those who
/// could read it (or administrators), the permission error otherwise.
fn missing(caller: &Caller, actual: Option<&StoredObject>, id: &str) -> ApiError {
    let readable = caller.admin || caller.reads_all || actual.is_some_and(|o| caller.can_read(o));
    if readable {
        ApiError::not_found("account", id)
    } else {
        caller.denied()
    }
}

/// `{"write": ["account:<id>"]}` added to whatever the client asked: the
/// account itself is always its writer, whoever creates it.
fn owner_permissions(mut perms: Permissions, id: &str) -> Permissions {
    let me = format!("{PREFIX}{id}");
    let w = perms.entry("write".to_owned()).or_default();
    if !w.contains(&me) {
        w.push(me);
    }
    perms.retain(|_, v| !v.is_empty());
    perms
}

fn envelope(obj: &StoredObject) -> Value {
    json!({"data": Value::Object(obj.data.clone()), "permissions": obj.permissions})
}

fn strip_owned(data: &mut Map<String, Value>) {
    data.remove("id");
    data.remove("last_modified");
}

/// The clear password of a body's `data`: required unless `optional`.
fn password_of(
    data: Option<&Map<String, Value>>,
    optional: bool,
) -> Result<Option<String>, ApiError> {
    match data.and_then(|d| d.get("password")) {
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s.clone())),
        None if optional => Ok(None),
        _ => Err(ApiError::invalid(
            Location::Body,
            Some("data.password"),
            "Required",
        )),
    }
}

fn check_conditions(
    conds: &Conditions,
    obj: Option<&StoredObject>,
    list_ts: u64,
) -> Result<(), ApiError> {
    match (obj, conds.if_match, conds.if_none_match) {
        (Some(o), Some(Precondition::Timestamp(t)), _) if t != o.last_modified => Err(
            ApiError::precondition_failed(Some(Value::Object(o.data.clone())), o.last_modified),
        ),
        (Some(o), _, Some(Precondition::Any)) => Err(ApiError::precondition_failed(
            Some(Value::Object(o.data.clone())),
            o.last_modified,
        )),
        (None, Some(_), _) => Err(ApiError::precondition_failed(None, list_ts)),
        _ => Ok(()),
    }
}

// ---- routing -------------------------------------------------------------

/// Serves `/accounts` (`id = None`) and `/accounts/{id}`.
pub async fn handle(state: &AppState, ctx: &Ctx, id: Option<String>) -> Result<Reply, ApiError> {
    let m = &ctx.method;
    match id {
        None => match *m {
            Method::GET => list(state, ctx, false).await,
            Method::HEAD => list(state, ctx, true).await,
            Method::POST => post(state, ctx).await,
            Method::DELETE => delete_all(state, ctx).await,
            Method::OPTIONS => crate::root::preflight(ctx, PLURAL_METHODS),
            _ => Err(ApiError::method_not_allowed(PLURAL_METHODS)),
        },
        Some(id) => match *m {
            Method::GET | Method::HEAD => get(state, ctx, &id),
            Method::PUT => put(state, ctx, id).await,
            Method::PATCH => patch(state, ctx, id).await,
            Method::DELETE => delete(state, ctx, id).await,
            Method::OPTIONS => crate::root::preflight(ctx, OBJECT_METHODS),
            _ => Err(ApiError::method_not_allowed(OBJECT_METHODS)),
        },
    }
}

fn invalid_id() -> ApiError {
    ApiError::invalid(Location::Path, None, "Invalid object id")
}

async fn submit(
    state: &AppState,
    ctx: &Ctx,
    op: impl Fn(&mut Txn<'_>) -> Result<Outcome, TxnError> + Send + 'static,
) -> Result<Outcome, ApiError> {
    state
        .sequencer
        .submit(
            ctx.request_id.clone(),
            ctx.identity.user_id.clone(),
            Box::new(op),
        )
        .await
}

fn reply(out: Outcome) -> Reply {
    Reply::json(out.status, out.body, out.timestamp, Exposure::Basic)
}

// ---- object endpoint -------------------------------------------------------

fn get(state: &AppState, ctx: &Ctx, id: &str) -> Result<Reply, ApiError> {
    let caller = Caller::new(state, &ctx.identity);
    let conds = ctx.conditions()?;
    if !is_valid_account_id(id) {
        return Err(if caller.identity.user_id.is_some() || caller.can_create {
            invalid_id()
        } else {
            caller.denied()
        });
    }
    let actual = state
        .projections
        .get(&ObjectKey::account(id))
        .map_err(ApiError::internal)?;
    let Some(obj) = visible(actual.clone(), &caller, id) else {
        return Err(missing(&caller, actual.as_ref(), id));
    };
    if !caller.can_read(&obj) {
        return Err(caller.denied());
    }
    match conds.if_none_match {
        Some(Precondition::Timestamp(t)) if t == obj.last_modified => {
            return Ok(Reply::not_modified(obj.last_modified))
        }
        Some(Precondition::Any) => {
            return Err(ApiError::precondition_failed(
                Some(Value::Object(obj.data.clone())),
                obj.last_modified,
            ))
        }
        _ => {}
    }
    if let Some(Precondition::Timestamp(t)) = conds.if_match {
        if t != obj.last_modified {
            return Err(ApiError::precondition_failed(
                Some(Value::Object(obj.data.clone())),
                obj.last_modified,
            ));
        }
    }
    let mut r = Reply::json(
        StatusCode::OK,
        envelope(&obj),
        Some(obj.last_modified),
        Exposure::Object,
    );
    if ctx.identity.user_id.is_some() {
        r = r.with_header(axum::http::header::CACHE_CONTROL, "no-cache, no-store");
    }
    Ok(r)
}

/// `PUT /accounts/{id}`: sign up, or replace (password reset).
async fn put(state: &AppState, ctx: &Ctx, id: String) -> Result<Reply, ApiError> {
    check_json_content_type(ctx)?;
    let env = parse_envelope(parse_json(ctx)?, Resource::Account)?;
    if !is_valid_account_id(&id) {
        return Err(invalid_id());
    }
    let mut data = env.data.clone().unwrap_or_default();
    let clear = password_of(Some(&data), false)?.unwrap_or_default();
    crate::body::check_body_id(&data, &id)?;
    strip_owned(&mut data);
    data.insert(
        "password".into(),
        Value::String(hash_password(clear).await?),
    );
    let caller = Caller::new(state, &ctx.identity);
    let conds = ctx.conditions()?;
    let perms = env.permissions.clone().unwrap_or_default();
    let user = id.clone();
    let out = submit(state, ctx, move |txn| {
        let key = ObjectKey::account(&id);
        let existing = visible(txn.get(&key)?, &caller, &id);
        let list_ts = txn.list_timestamp("", Resource::Account)?;
        match &existing {
            Some(obj) => {
                if !caller.can_write(obj) {
                    return Err(caller.denied().into());
                }
            }
            None => caller.check_create(&id)?,
        }
        check_conditions(&conds, existing.as_ref(), list_ts)?;
        let stored = txn.put(
            &key,
            data.clone(),
            owner_permissions(perms.clone(), &id),
            None,
        )?;
        Ok(Outcome {
            headers: Vec::new(),
            status: if existing.is_some() {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            body: envelope(&stored),
            timestamp: Some(stored.last_modified),
        })
    })
    .await?;
    state.plugins.accounts.forget(&user);
    Ok(reply(out))
}

/// The clear password a PATCH sets, whatever its flavour.
fn patched_password(request: &PatchRequest) -> Result<Option<String>, ApiError> {
    match request {
        PatchRequest::Plain { data, .. } | PatchRequest::Merge { data, .. } => {
            match data.as_ref().and_then(|d| d.get("password")) {
                None => Ok(None),
                Some(_) => password_of(data.as_ref(), false),
            }
        }
        PatchRequest::JsonPatch { ops } => {
            let mut found = None;
            for op in ops {
                if op.get("path").and_then(Value::as_str) == Some("/data/password") {
                    match op.get("value") {
                        Some(Value::String(s)) if !s.is_empty() => found = Some(s.clone()),
                        _ => {
                            return Err(ApiError::invalid(
                                Location::Body,
                                Some("data.password"),
                                "Required",
                            ))
                        }
                    }
                }
            }
            Ok(found)
        }
    }
}

async fn patch(state: &AppState, ctx: &Ctx, id: String) -> Result<Reply, ApiError> {
    let kind = patch_kind(ctx)?;
    let request = PatchRequest::parse(kind, parse_json(ctx)?, Resource::Account)?;
    let behavior = ResponseBehavior::from_header(ctx.header_str("Response-Behavior"))?;
    if !is_valid_account_id(&id) {
        return Err(invalid_id());
    }
    let new_hash = match patched_password(&request)? {
        Some(clear) => Some(hash_password(clear).await?),
        None => None,
    };
    let caller = Caller::new(state, &ctx.identity);
    let conds = ctx.conditions()?;
    let user = id.clone();
    let out = submit(state, ctx, move |txn| {
        let key = ObjectKey::account(&id);
        let actual = txn.get(&key)?;
        let Some(obj) = visible(actual.clone(), &caller, &id) else {
            return Err(missing_for_write(&caller, actual.as_ref(), &id).into());
        };
        if !caller.can_write(&obj) {
            return Err(caller.denied().into());
        }
        check_conditions(&conds, Some(&obj), obj.last_modified)?;
        let (mut data, perms) = request.apply(&obj, Resource::Account)?;
        crate::body::check_body_id(&data, &id)?;
        strip_owned(&mut data);
        match &new_hash {
            Some(h) => {
                data.insert("password".into(), Value::String(h.clone()));
            }
            None => {
                // Never store a clear password, whatever the patch did.
                if data.get("password") != obj.data.get("password") {
                    return Err(ApiError::invalid(
                        Location::Body,
                        Some("data.password"),
                        "Required",
                    )
                    .into());
                }
            }
        }
        let stored = txn.put(&key, data, owner_permissions(perms, &id), None)?;
        let body = behavior.render(&request, &stored, envelope(&stored));
        Ok(Outcome {
            headers: Vec::new(),
            status: StatusCode::OK,
            body,
            timestamp: Some(stored.last_modified),
        })
    })
    .await?;
    state.plugins.accounts.forget(&user);
    Ok(reply(out))
}

/// PATCH / DELETE of an account out of reach: administrators learn it is
/// missing, others get the permission error.
fn missing_for_write(caller: &Caller, actual: Option<&StoredObject>, id: &str) -> ApiError {
    if caller.admin {
        ApiError::not_found("account", id)
    } else {
        missing(caller, actual, id)
    }
}

async fn delete(state: &AppState, ctx: &Ctx, id: String) -> Result<Reply, ApiError> {
    if !is_valid_account_id(&id) {
        return Err(invalid_id());
    }
    let caller = Caller::new(state, &ctx.identity);
    let conds = ctx.conditions()?;
    let user = id.clone();
    let out = submit(state, ctx, move |txn| {
        // Removing the principal everywhere scans committed state.
        txn.require_alone()?;
        let key = ObjectKey::account(&id);
        let actual = txn.get(&key)?;
        let Some(obj) = visible(actual.clone(), &caller, &id) else {
            return Err(missing_for_write(&caller, actual.as_ref(), &id).into());
        };
        if !caller.can_write(&obj) {
            return Err(caller.denied().into());
        }
        check_conditions(&conds, Some(&obj), obj.last_modified)?;
        let ts = delete_account(txn, &id)?;
        Ok(Outcome {
            headers: Vec::new(),
            status: StatusCode::OK,
            body: json!({"data": tombstone(&id, ts)}),
            timestamp: Some(ts),
        })
    })
    .await?;
    state.plugins.accounts.forget(&user);
    Ok(reply(out))
}

/// Deletes the account and removes `account:<id>` from every ACL and group
/// `members` naming it, all in the closure's commit. The closure must run
/// alone ([`Txn::require_alone`]): the principal index is committed state.
pub fn delete_account(txn: &mut Txn<'_>, id: &str) -> Result<u64, TxnError> {
    let key = ObjectKey::account(id);
    let ts = txn.delete(&key, None)?;
    remove_principal(txn, &format!("{PREFIX}{id}"), &key)?;
    Ok(ts)
}

/// Rewrites every object whose ACL names `principal`, and every group that
/// lists it as a member, without it (`except`: an object being deleted).
pub fn remove_principal(
    txn: &mut Txn<'_>,
    principal: &str,
    except: &ObjectKey,
) -> Result<(), TxnError> {
    let mut keys: BTreeMap<ObjectKey, ()> = BTreeMap::new();
    for (key, _) in txn.projections().objects_naming(principal)? {
        keys.insert(key, ());
    }
    for uri in txn.projections().groups_of(principal)? {
        if let Some(key) = group_key(&uri) {
            keys.insert(key, ());
        }
    }
    for key in keys.into_keys() {
        if key == *except {
            continue;
        }
        let Some(obj) = txn.get(&key)? else {
            continue;
        };
        let mut data = obj.data.clone();
        strip_owned(&mut data);
        if key.resource == Resource::Group {
            if let Some(Value::Array(members)) = data.get_mut("members") {
                members.retain(|m| m.as_str() != Some(principal));
            }
        }
        let mut perms = obj.permissions.clone();
        for list in perms.values_mut() {
            list.retain(|p| p != principal);
        }
        perms.retain(|_, v| !v.is_empty());
        txn.put(&key, data, perms, None)?;
    }
    Ok(())
}

/// `/buckets/b/groups/g` → its key.
fn group_key(uri: &str) -> Option<ObjectKey> {
    let rest = uri.strip_prefix("/buckets/")?;
    let (bid, gid) = rest.split_once("/groups/")?;
    Some(ObjectKey::group(bid, gid))
}

// ---- plural endpoint -------------------------------------------------------

/// Which accounts a listing (or bulk delete) shows this caller.
fn listed(state: &AppState, caller: &Caller) -> Result<Option<Vec<String>>, ApiError> {
    if caller.admin && caller.reads_all {
        return Ok(None);
    }
    let mut ids: Vec<String> = state
        .projections
        .objects_for_principals(&caller.identity.principals, "", Resource::Account)
        .map_err(ApiError::internal)?
        .into_iter()
        .filter(|(_, perms)| perms.iter().any(|p| p == "read" || p == "write"))
        .map(|(id, _)| id)
        .collect();
    if !caller.admin {
        ids.retain(|id| caller.selected.as_deref() == Some(id.as_str()));
    }
    Ok(Some(ids))
}

fn cannot_read_accounts() -> Reply {
    Reply::json(
        StatusCode::UNAUTHORIZED,
        json!({"code": 401, "errno": 999, "error": "Cannot read accounts."}),
        None,
        Exposure::Basic,
    )
}

async fn list(state: &AppState, ctx: &Ctx, head: bool) -> Result<Reply, ApiError> {
    let caller = Caller::new(state, &ctx.identity);
    if ctx.identity.user_id.is_none() {
        return Ok(cannot_read_accounts());
    }
    let query = ListQuery::parse(ctx, Resource::Account, &state.settings)?;
    let ids = listed(state, &caller)?;
    let ts = state
        .projections
        .list_timestamp("", Resource::Account)
        .map_err(ApiError::internal)?
        .unwrap_or(state.started_ms);
    let conds = ctx.conditions()?;
    match conds.if_none_match {
        Some(Precondition::Timestamp(t)) if t == ts => return Ok(Reply::not_modified(ts)),
        Some(Precondition::Any) => return Err(ApiError::precondition_failed(None, ts)),
        _ => {}
    }
    if let Some(Precondition::Timestamp(t)) = conds.if_match {
        if t != ts {
            return Err(ApiError::precondition_failed(None, ts));
        }
    }
    let page = match &ids {
        None => query.run(state, "", Resource::Account, &|_| true, true)?,
        Some(ids) => query.run(
            state,
            "",
            Resource::Account,
            &|id| ids.iter().any(|i| i == id),
            false,
        )?,
    };
    Ok(query.reply(ctx, page, Some(ts), head))
}

/// `POST /accounts`: like PUT of `data.id`, but an existing account the
/// caller may read is returned as it is (200).
async fn post(state: &AppState, ctx: &Ctx) -> Result<Reply, ApiError> {
    check_json_content_type(ctx)?;
    let env = parse_envelope(parse_json(ctx)?, Resource::Account)?;
    let mut data = env.data.clone().unwrap_or_default();
    let id = match data.remove("id") {
        Some(Value::String(s)) if is_valid_account_id(&s) => s,
        Some(Value::String(_)) => {
            return Err(ApiError::invalid(
                Location::Body,
                Some("data.id"),
                "Invalid object id",
            ))
        }
        _ => {
            return Err(ApiError::invalid(
                Location::Body,
                Some("data.id"),
                "Required",
            ))
        }
    };
    let clear = password_of(Some(&data), false)?.unwrap_or_default();
    strip_owned(&mut data);
    let caller = Caller::new(state, &ctx.identity);
    // Cheap answers first: no bcrypt for a request that cannot create.
    let existing = state
        .projections
        .get(&ObjectKey::account(&id))
        .map_err(ApiError::internal)?;
    if visible(existing, &caller, &id).is_none() {
        caller.check_create(&id)?;
    }
    data.insert(
        "password".into(),
        Value::String(hash_password(clear).await?),
    );
    let conds = ctx.conditions()?;
    let perms = env.permissions.clone().unwrap_or_default();
    let user = id.clone();
    let out = submit(state, ctx, move |txn| {
        let key = ObjectKey::account(&id);
        if let Some(obj) = visible(txn.get(&key)?, &caller, &id) {
            if !caller.can_read(&obj) {
                return Err(caller.denied().into());
            }
            return Ok(Outcome {
                headers: Vec::new(),
                status: StatusCode::OK,
                body: envelope(&obj),
                timestamp: Some(obj.last_modified),
            });
        }
        caller.check_create(&id)?;
        let list_ts = txn.list_timestamp("", Resource::Account)?;
        check_conditions(&conds, None, list_ts)?;
        let stored = txn.put(
            &key,
            data.clone(),
            owner_permissions(perms.clone(), &id),
            None,
        )?;
        Ok(Outcome {
            headers: Vec::new(),
            status: StatusCode::CREATED,
            body: envelope(&stored),
            timestamp: Some(stored.last_modified),
        })
    })
    .await?;
    if out.status == StatusCode::CREATED {
        state.plugins.accounts.forget(&user);
    }
    Ok(reply(out))
}

/// `DELETE /accounts`: deletes the listed accounts the caller may write.
async fn delete_all(state: &AppState, ctx: &Ctx) -> Result<Reply, ApiError> {
    let caller = Caller::new(state, &ctx.identity);
    if ctx.identity.user_id.is_none() {
        return Err(ApiError::unauthorized());
    }
    let query = ListQuery::parse(ctx, Resource::Account, &state.settings)?;
    let ids = listed(state, &caller)?;
    let page = match &ids {
        None => query.run(state, "", Resource::Account, &|_| true, false)?,
        Some(ids) => query.run(
            state,
            "",
            Resource::Account,
            &|id| ids.iter().any(|i| i == id),
            false,
        )?,
    };
    let targets: Vec<String> = page
        .items
        .iter()
        .filter_map(|o| o.get("id").and_then(Value::as_str).map(str::to_owned))
        .collect();
    let forget = targets.clone();
    let out = submit(state, ctx, move |txn| {
        txn.require_alone()?;
        let mut deleted = Vec::new();
        let mut newest = None;
        for id in &targets {
            let Some(obj) = txn.get(&ObjectKey::account(id))? else {
                continue;
            };
            if !caller.can_write(&obj) {
                continue;
            }
            let ts = delete_account(txn, id)?;
            newest = Some(ts);
            deleted.push(tombstone(id, ts));
        }
        let ts = match newest {
            Some(t) => t,
            None => txn.list_timestamp("", Resource::Account)?,
        };
        Ok(Outcome {
            headers: Vec::new(),
            status: StatusCode::OK,
            body: json!({"data": deleted}),
            timestamp: Some(ts),
        })
    })
    .await?;
    for id in forget {
        state.plugins.accounts.forget(&id);
    }
    Ok(reply(out))
}

/// `cairn create-user`: the closure that creates or overwrites an account
/// (password reset), as Kinto's `create-user` does.
pub fn upsert_op(
    id: String,
    bcrypt_hash: String,
) -> impl Fn(&mut Txn<'_>) -> Result<Outcome, TxnError> + Send + 'static {
    move |txn| {
        let key = ObjectKey::account(&id);
        let mut data = match txn.get(&key)? {
            Some(obj) => obj.data,
            None => Map::new(),
        };
        strip_owned(&mut data);
        data.insert("password".into(), Value::String(bcrypt_hash.clone()));
        let stored = txn.put(&key, data, owner_permissions(Permissions::new(), &id), None)?;
        Ok(Outcome {
            headers: Vec::new(),
            status: StatusCode::OK,
            body: envelope(&stored),
            timestamp: Some(stored.last_modified),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn account_ids() {
        for ok in ["bob", "me@example.com", "a+b.c_d-e", "0"] {
            assert!(is_valid_account_id(ok), "{ok}");
        }
        for bad in ["", "bad user", "-bob", ".x", "é", "a/b", "@x"] {
            assert!(!is_valid_account_id(bad), "{bad}");
        }
    }

    #[test]
    fn cache_matches_only_the_same_password_and_hash() {
        let c = VerifiedCache::default();
        let ttl = Duration::from_secs(30);
        assert!(!c.hit("bob", "pw", "$2b$h1", ttl));
        c.remember("bob", "pw", "$2b$h1", ttl);
        assert!(c.hit("bob", "pw", "$2b$h1", ttl));
        assert!(!c.hit("bob", "other", "$2b$h1", ttl));
        assert!(
            !c.hit("bob", "pw", "$2b$h2", ttl),
            "a changed hash never matches"
        );
        assert!(!c.hit("alice", "pw", "$2b$h1", ttl));
        c.forget("bob");
        assert!(!c.hit("bob", "pw", "$2b$h1", ttl));
        c.remember("bob", "pw", "$2b$h1", Duration::ZERO);
        assert!(!c.hit("bob", "pw", "$2b$h1", ttl), "expired");
        // The password itself is nowhere in the cache's debug output.
        c.remember("bob", "hunter2", "$2b$h1", ttl);
        assert!(!format!("{c:?}").contains("hunter2"));
    }

    #[test]
    fn owner_is_always_a_writer() {
        let p = owner_permissions(Permissions::new(), "bob");
        assert_eq!(p["write"], vec!["account:bob"]);
        let mut given = Permissions::new();
        given.insert("read".into(), vec!["system.Everyone".into()]);
        given.insert("write".into(), vec![]);
        let p = owner_permissions(given, "bob");
        assert_eq!(p["write"], vec!["account:bob"]);
        assert_eq!(p["read"], vec!["system.Everyone"]);
    }

    #[test]
    fn bcrypt_hashes_are_kintos_and_verify() {
        // A hash made by Kinto 26.5 (python bcrypt) for "pw1".
        let kinto = "$2b$12$My6FsH0bItb8hx6RGGflYu4ys5DRGNDEHPctEvxk3zFNDjBveoz/u";
        assert!(bcrypt::verify("pw1", kinto).unwrap());
        assert!(!bcrypt::verify("pw2", kinto).unwrap());
        let h = bcrypt::hash("pw", 4).unwrap();
        assert!(h.starts_with("$2b$04$"), "{h}");
    }

    #[test]
    fn group_uris() {
        assert_eq!(
            group_key("/buckets/b/groups/g"),
            Some(ObjectKey::group("b", "g"))
        );
        assert_eq!(group_key("/buckets/b"), None);
    }
}
