//! Kinto's plugins as built-in features, switched on by `includes`:
//! accounts, history, the permissions endpoint, flush, metrics,
//! attachments. The core calls these hooks; each plugin lives in its own
//! module.
//!
//! Hooks:
//! - [`resolve`]: URL paths (below `/v1`) that a plugin serves.
//! - [`handle`]: serves such a path (404 when the plugin is off).
//! - [`authenticate`]: the `multiauth.policies` pipeline (accounts, Basic
//!   Auth), in the configured order; the first policy that knows the
//!   caller wins.
//! - [`capabilities`]: entries for `GET /v1/` `capabilities`.
//! - [`observe`]: every answered request, for the metrics.
//!
//! Modules:
//! - `accounts`: `/accounts`, the accounts policy and its password cache.
//! - `config_ini`: reading a Kinto ini file (`cairn serve --ini`).
//! - `flush`: `POST /__flush__`.
//! - `history`: `/buckets/{bid}/history`, read from the event log.
//! - `metrics`: Prometheus `/__metrics__`.
//! - `permissions_endpoint`: `/permissions`.
//! - `attachments`: kinto-attachment's `…/records/{rid}/attachment` and the
//!   files themselves (`/attachments/…`), with their garbage collector.
//! - `cli`: `cairn create-user`.

pub mod accounts;
pub mod attachments;
pub mod cli;
pub mod config_ini;
pub mod flush;
pub mod history;
pub mod metrics;
pub mod permissions_endpoint;

use std::time::Duration;

use axum::http::{HeaderValue, Method, StatusCode};
use serde_json::{json, Map, Value};

use crate::errors::ApiError;
use crate::request::Ctx;
use crate::response::Reply;
use crate::settings::{plugin, Policy};
use crate::state::AppState;

/// The plugins' in-memory state, one per server (in [`AppState`]).
#[derive(Debug, Default)]
pub struct Plugins {
    /// Basic Auth user ids already derived (see [`BasicIds`]).
    pub basic_ids: BasicIds,
    /// Successful account password checks.
    pub accounts: accounts::VerifiedCache,
    /// Request counts and latencies.
    pub metrics: metrics::Registry,
    /// Per-bucket index of the log, for history.
    pub history: history::Index,
    /// Uploads in flight and the file collector.
    pub attachments: attachments::Store,
}

/// A path served by a plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PluginRoute {
    /// `/accounts` (`None`) or `/accounts/{id}`.
    Accounts(Option<String>),
    /// `/buckets/{bid}/history`.
    History(String),
    /// `/permissions`.
    Permissions,
    /// `/__flush__`.
    Flush,
    /// `/__metrics__`.
    Metrics,
    /// `…/records/{rid}/attachment` and `/attachments/{location}`.
    Attachment(attachments::Route),
}

impl PluginRoute {
    /// The route's name in metrics (Kinto's service names).
    pub fn endpoint(&self) -> &'static str {
        match self {
            PluginRoute::Accounts(None) => "account-plural",
            PluginRoute::Accounts(Some(_)) => "account-object",
            PluginRoute::History(_) => "history-plural",
            PluginRoute::Permissions => "permissions",
            PluginRoute::Flush => "flush",
            PluginRoute::Metrics => "metrics",
            PluginRoute::Attachment(r) => r.endpoint(),
        }
    }
}

/// Which plugin serves `rest` (the path after `/v1`, e.g. `/accounts/bob`).
pub fn resolve(rest: &str) -> Option<PluginRoute> {
    let segs: Vec<&str> = rest.strip_prefix('/')?.split('/').collect();
    match segs.as_slice() {
        ["accounts"] => Some(PluginRoute::Accounts(None)),
        ["accounts", id] if !id.is_empty() => Some(PluginRoute::Accounts(Some((*id).to_owned()))),
        ["buckets", bid, "history"] if !bid.is_empty() => {
            Some(PluginRoute::History((*bid).to_owned()))
        }
        ["permissions"] => Some(PluginRoute::Permissions),
        ["__flush__"] => Some(PluginRoute::Flush),
        ["__metrics__"] => Some(PluginRoute::Metrics),
        _ => attachments::resolve(&segs).map(PluginRoute::Attachment),
    }
}

/// Serves a plugin path; a plugin that is not switched on has no routes.
pub async fn handle(state: &AppState, ctx: &Ctx, route: PluginRoute) -> Result<Reply, ApiError> {
    let s = &state.settings;
    match route {
        PluginRoute::Accounts(id) if s.includes(plugin::ACCOUNTS) => {
            accounts::handle(state, ctx, id).await
        }
        PluginRoute::History(bid) if s.includes(plugin::HISTORY) => {
            history::handle(state, ctx, &bid).await
        }
        PluginRoute::Permissions if s.experimental_permissions_endpoint => {
            permissions_endpoint::handle(state, ctx).await
        }
        PluginRoute::Flush if s.includes(plugin::FLUSH) => flush::handle(state, ctx).await,
        PluginRoute::Metrics if s.includes(plugin::PROMETHEUS) => metrics::handle(state, ctx),
        PluginRoute::Attachment(r) if s.includes(plugin::ATTACHMENT) => {
            attachments::handle(state, ctx, r).await
        }
        _ => Err(ApiError::unknown_url()),
    }
}

/// Runs the authentication policies in `multiauth.policies` order:
/// `Some(user_id)` from the first one that recognizes the caller, `None`
/// (anonymous) when none does. Bad credentials are never an error.
pub async fn authenticate(
    state: &AppState,
    authorization: Option<&HeaderValue>,
) -> Result<Option<String>, ApiError> {
    if authorization.is_none() {
        return Ok(None);
    }
    for policy in state.settings.policies() {
        let found = match policy {
            Policy::Accounts => accounts::authenticate(state, authorization).await?,
            Policy::BasicAuth => state
                .plugins
                .basic_ids
                .user_id(authorization, state.settings.userid_hmac_secret.expose()),
            Policy::Unsupported(_) => None,
        };
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Basic Auth user ids already derived: the HMAC of every request's
/// credentials costs more than the rest of a cached read. Keyed by a keyed
/// blake3 hash of the `Authorization` header (the key is random per
/// process), so no credential is kept in clear.
#[derive(Debug)]
pub struct BasicIds {
    key: [u8; 32],
    map: std::sync::Mutex<std::collections::HashMap<[u8; 32], Option<String>>>,
}

impl Default for BasicIds {
    fn default() -> Self {
        BasicIds {
            key: rand::random(),
            map: Default::default(),
        }
    }
}

impl BasicIds {
    /// Entries kept at most; emptied past it.
    const MAX: usize = 10_000;

    /// [`crate::auth::basic_auth_userid`], remembered.
    pub fn user_id(&self, authorization: Option<&HeaderValue>, secret: &str) -> Option<String> {
        let header = authorization?;
        let k = *blake3::keyed_hash(&self.key, header.as_bytes()).as_bytes();
        if let Some(hit) = self.map.lock().ok().and_then(|m| m.get(&k).cloned()) {
            return hit;
        }
        let id = crate::auth::basic_auth_userid(Some(header), secret);
        if let Ok(mut m) = self.map.lock() {
            if m.len() >= Self::MAX {
                m.clear();
            }
            m.insert(k, id.clone());
        }
        id
    }
}

/// Is `/buckets/default` the caller's personal bucket (the default_bucket
/// plugin)? Without it, `default` is an ordinary bucket id.
pub fn default_bucket_enabled(state: &AppState) -> bool {
    state.settings.includes(plugin::DEFAULT_BUCKET)
}

/// Capabilities of `GET /v1/`, in Kinto's order: `basicauth` (when a
/// policy), then the plugins in `includes` order, then the permissions
/// endpoint.
pub fn capabilities(state: &AppState) -> Map<String, Value> {
    let s = &state.settings;
    let mut caps = Map::new();
    if s.policies().contains(&Policy::BasicAuth) {
        caps.insert(
            "basicauth".into(),
            json!({
                "description": "Very basic authentication sessions. Not for production use.",
                "url": "http://kinto.readthedocs.io/en/stable/api/1.x/authentication.html",
            }),
        );
    }
    // Records are always validated against their collection's schema.
    caps.insert(
        "schema".into(),
        json!({
            "description": "Validates collection records with JSON schemas.",
            "url": "https://kinto.readthedocs.io/en/latest/api/1.x/collections.html#collection-json-schema",
        }),
    );
    for name in &s.includes {
        let (key, value) = match name.as_str() {
            plugin::DEFAULT_BUCKET => (
                "default_bucket",
                json!({
                    "description": "The default bucket is an alias for a personal bucket where collections are created implicitly.",
                    "url": "https://kinto.readthedocs.io/en/latest/api/1.x/buckets.html#personal-bucket-default",
                }),
            ),
            plugin::ACCOUNTS => (
                "accounts",
                json!({
                    "description": "Manage user accounts.",
                    "url": "https://kinto.readthedocs.io/en/latest/api/1.x/accounts.html",
                    "validation_enabled": false,
                }),
            ),
            plugin::FLUSH => (
                "flush_endpoint",
                json!({
                    "description": "The __flush__ endpoint can be used to remove all data from all backends.",
                    "url": "https://kinto.readthedocs.io/en/latest/api/1.x/flush.html",
                }),
            ),
            plugin::HISTORY => ("history", history::capability(s)),
            plugin::PROMETHEUS => ("prometheus", metrics::capability(s)),
            plugin::ATTACHMENT => ("attachments", attachments::capability(s)),
            _ => continue,
        };
        caps.insert(key.into(), value);
    }
    if s.experimental_permissions_endpoint {
        caps.insert(
            "permissions_endpoint".into(),
            json!({
                "description": "The permissions endpoint can be used to list all user objects permissions.",
                "url": "https://kinto.readthedocs.io/en/latest/configuration/settings.html#activating-the-permissions-endpoint",
            }),
        );
    }
    caps
}

/// Called once per answered top-level request, with the path as received.
pub fn observe(state: &AppState, method: &Method, path: &str, status: StatusCode, took: Duration) {
    if state.settings.includes(plugin::PROMETHEUS) {
        state.plugins.metrics.observe(method, path, status, took);
    }
    if state.settings.includes(plugin::ATTACHMENT) {
        // Plugins have no start-up hook: the first request starts it.
        attachments::ensure_collector(state);
    }
}

/// Names at start what the configuration asks for that Cairn does not do:
/// Kinto settings that do not apply, plugins and policies it lacks.
pub fn report_settings(s: &crate::settings::Settings) {
    if !s.ignored.is_empty() {
        tracing::info!(settings = ?s.ignored, "Kinto settings that do not apply to Cairn, ignored");
    }
    let plugins = s.unsupported_includes();
    if !plugins.is_empty() {
        tracing::warn!(?plugins, "included plugins Cairn does not support, ignored");
    }
    let policies: Vec<String> = s
        .policies()
        .into_iter()
        .filter_map(|p| match p {
            Policy::Unsupported(name) => Some(name),
            _ => None,
        })
        .collect();
    if !policies.is_empty() {
        tracing::warn!(
            ?policies,
            "authentication policies Cairn does not support: they never authenticate anyone"
        );
    }
}
