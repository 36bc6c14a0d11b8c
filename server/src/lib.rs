//! The `cairn` server: HTTP, auth, permissions and the Kinto API.
//!
//! Map of the crate:
//! - `serve`: startup (log, projections, sequencer, listener) and graceful shutdown.
//! - `app`: the single HTTP entry point: request → route → handler → response.
//! - `routes`: the URL table (which paths exist, what they address).
//! - `request`: the parsed request (`Ctx`) and the caller (`Identity`).
//! - `batch`: `POST /batch`: sub-requests, one log record per run of writes.
//! - `body`: content types, JSON and the `{data, permissions}` envelope.
//! - `objects`: object endpoints (GET/HEAD/PUT/PATCH/DELETE).
//! - `plural`: plural endpoints (list, create, bulk delete).
//! - `listing`: list queries: pagination, `_since`/`_before`, `_fields`, pages.
//! - `membership`: the groups of a caller, cached until the projections change.
//! - `filters`: querystring filters and `_sort`: parsing, typing, ordering.
//! - `openapi`: `/__api__`, generated from the route table.
//! - `patch`: the three PATCH flavours and `Response-Behavior`.
//! - `access`: loading an object with its ancestors; 401/403/404 decisions.
//! - `permissions`: Kinto's permission inheritance table, as data.
//! - `plugins`: accounts, history, permissions endpoint, flush… behind hooks.
//! - `personal_bucket`: implicit creation under `/buckets/default`.
//! - `default_bucket`: the personal bucket id derivation.
//! - `schema`: JSON Schema validation of records, collections, groups.
//! - `sequencer`: the single writer: preconditions, timestamps, group commit.
//! - `service`: Backoff, end of service (`eos`), CORS origins.
//! - `root`: `GET /v1/`, heartbeats, version, CORS preflight.
//! - `response`: JSON answers and their headers.
//! - `headers`: ETag, HTTP dates, conditional and timestamp parameters.
//! - `auth`: Basic Auth user ids.
//! - `ids`: object id rules and generation.
//! - `settings`: typed settings from file, `KINTO_*` environment and flags.
//! - `errors`: the one error type and Kinto's errno table.
//! - `tools`: audit and recovery CLI: log verify/show/checkpoint/replay, snapshot, restore.

pub mod access;
pub mod app;
pub mod auth;
pub mod batch;
pub mod body;
pub mod default_bucket;
pub mod errors;
pub mod filters;
pub mod headers;
pub mod ids;
pub mod listing;
pub mod membership;
pub mod objects;
pub mod openapi;
pub mod patch;
pub mod permissions;
pub mod personal_bucket;
pub mod plugins;
pub mod plural;
pub mod request;
pub mod response;
pub mod root;
pub mod routes;
pub mod schema;
pub mod sequencer;
pub mod serve;
pub mod service;
pub mod settings;
pub mod state;
pub mod tools;
