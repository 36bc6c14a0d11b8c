//! Shared harness for Cairn's black-box end-to-end tests.
//!
//! The tests in `tests/` start the real `cairn` binary and speak HTTP to it;
//! nothing of the server's code is linked. Build the server first:
//!
//! ```sh
//! cargo build -p cairn && cargo test -p cairn-tests
//! ```
//!
//! (`CAIRN_BIN=/path/to/cairn` picks another binary; `KINTO_URL=http://127.0.0.1:8899/v1`
//! runs the tests that do not restart a server against an already running
//! server, e.g. the reference Kinto, for differential checks.)
//!
//! * [`http`]: a minimal blocking HTTP/1.1 client with exact control over
//!   what is sent and what is seen.
//! * [`server`]: spawning, restarting and killing `cairn` (one shared server
//!   per test binary, or owned servers for restart/crash tests).
//! * this file: users and fresh ids (a namespace per test), assertion
//!   helpers for Kinto's error bodies and timestamp headers, and a
//!   table-driven request runner.
//!
//! The test files, by area (section numbers are `shared/spec/api-core.md`'s):
//!
//! * `objects.rs`: ids, methods, 405, redirects, the create/replace/update/
//!   delete table (1, 3).
//! * `envelope.rs`: content negotiation, `{data, permissions}`, PUT and
//!   PATCH semantics, who sees `permissions` (2, 3).
//! * `permissions.rs`: the inheritance table as data, per user id, group and
//!   `system.Authenticated`; principals, groups, writer rule, partial lists (4).
//! * `auth.rs`: Basic Auth user ids, malformed credentials, 401/403/404 (5).
//! * `timestamps.rs`: list timestamps, headers, client `last_modified`,
//!   no going back after delete + re-create (6).
//! * `concurrency.rs`: the If-Match / If-None-Match table, racing writers,
//!   no 412 leaks (7).
//! * `sync.rs`: `_since`/`_before`/`_to`, tombstones, the exactly-once
//!   poller (8).
//! * `cascade.rs` (15), `default_bucket.rs`, `errors.rs` (19),
//!   `headers.rs` (20).
//! * `restart.rs`, `crash.rs`: durability, projection rebuild, `kill -9`
//!   (own servers; skipped with `KINTO_URL`).
//! * `differential.rs`: one script against Cairn and the reference Kinto
//!   (`KINTO_REF_URL`), answers compared after normalisation.
//! * issue 4: `querying.rs` (filters, `_sort`, pagination, `_fields`,
//!   counts, bulk DELETE: 9-14), `patch.rs` (merge-patch, JSON-Patch,
//!   `Response-Behavior`: 3), `schema.rs` (16), `batch.rs` (17),
//!   `service.rs` (utility endpoints, redirects, CORS, operator settings:
//!   18, 20, 21), `bad_input.rs` (exact error bodies for malformed input).

pub mod http;
pub mod server;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};

pub use http::{Request, Response};
pub use server::Server;

/// Basic Auth credentials. Every pair is a distinct, valid Kinto user.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct User {
    pub name: String,
    pub password: String,
}

impl User {
    pub fn new(name: &str, password: &str) -> User {
        User {
            name: name.to_string(),
            password: password.to_string(),
        }
    }

    /// A user no other test (nor earlier run) uses.
    pub fn fresh(label: &str) -> User {
        User::new(&fresh_id(label), "secret-pw")
    }
}

fn run_nonce() -> &'static str {
    static NONCE: OnceLock<String> = OnceLock::new();
    NONCE.get_or_init(|| {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let mixed = nanos ^ (u64::from(std::process::id()) << 40);
        base36(mixed)
    })
}

fn base36(mut n: u64) -> String {
    let digits = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    while n > 0 {
        out.push(digits[(n % 36) as usize]);
        n /= 36;
    }
    out.reverse();
    String::from_utf8(out).unwrap()
}

/// An id valid for every object type, unique in this process and run:
/// `<label>-<nonce><counter>`.
pub fn fresh_id(label: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{label}-{}{n}", run_nonce())
}

/// Milliseconds since the epoch, from this machine's clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
}

/// A fresh bucket owned by `owner`: its id.
pub fn new_bucket(s: &Server, owner: &User) -> String {
    let bid = fresh_id("b");
    s.put(&format!("/buckets/{bid}"), owner, json!({}))
        .expect(201);
    bid
}

/// A fresh bucket with collection `c`, owned by `owner`: (bucket id,
/// records URL `/buckets/{bid}/collections/c/records`).
pub fn new_collection(s: &Server, owner: &User) -> (String, String) {
    let bid = new_bucket(s, owner);
    s.put(&format!("/buckets/{bid}/collections/c"), owner, json!({}))
        .expect(201);
    (bid.clone(), format!("/buckets/{bid}/collections/c/records"))
}

// ---- assertions ---------------------------------------------------------

/// Asserts a Kinto error response: status, `code`, `errno`, `error`, the
/// `message` when given, and that no unknown key is present. Returns the body.
#[track_caller]
pub fn assert_error(
    resp: &Response,
    status: u16,
    errno: u64,
    error: &str,
    message: Option<&str>,
) -> Value {
    assert_eq!(resp.status, status, "unexpected status\n{resp}");
    assert_eq!(
        resp.header("Content-Type"),
        Some("application/json"),
        "error responses are JSON\n{resp}"
    );
    let body = resp.json();
    assert_eq!(body["code"], json!(status), "code\n{resp}");
    assert_eq!(body["errno"], json!(errno), "errno\n{resp}");
    assert_eq!(body["error"], json!(error), "error\n{resp}");
    if let Some(m) = message {
        assert_eq!(body["message"], json!(m), "message\n{resp}");
    }
    let obj = body
        .as_object()
        .unwrap_or_else(|| panic!("error body is not an object\n{resp}"));
    for k in obj.keys() {
        assert!(
            ["code", "errno", "error", "message", "info", "details"].contains(&k.as_str()),
            "unexpected key {k:?} in error body\n{resp}"
        );
    }
    body
}

/// 401 errno 104 with a Basic challenge.
#[track_caller]
pub fn assert_401(resp: &Response) {
    let body = assert_error(
        resp,
        401,
        104,
        "Unauthorized",
        Some("Please authenticate yourself to use this endpoint."),
    );
    assert_eq!(
        body,
        json!({"code": 401, "errno": 104, "error": "Unauthorized",
               "message": "Please authenticate yourself to use this endpoint."}),
        "{resp}"
    );
    let challenges = resp.header_all("WWW-Authenticate").join(", ");
    assert!(
        !challenges.is_empty(),
        "401 without WWW-Authenticate\n{resp}"
    );
    for c in challenges.split(", ") {
        assert_eq!(c, "Basic realm=\"Realm\"", "WWW-Authenticate\n{resp}");
    }
}

/// 403 errno 121, exact body.
#[track_caller]
pub fn assert_403(resp: &Response) {
    assert_error(resp, 403, 121, "Forbidden", None);
    assert_eq!(
        resp.json(),
        json!({"code": 403, "errno": 121, "error": "Forbidden",
               "message": "This user cannot access this resource."}),
        "{resp}"
    );
}

/// 404 errno 110 for a missing object, exact body (no `message`).
#[track_caller]
pub fn assert_404(resp: &Response, id: &str, resource_name: &str) {
    assert_error(resp, 404, 110, "Not Found", None);
    assert_eq!(
        resp.json(),
        json!({"code": 404, "errno": 110, "error": "Not Found",
               "details": {"id": id, "resource_name": resource_name}}),
        "{resp}"
    );
}

/// 400 errno 107 "Invalid parameters"; returns the body.
#[track_caller]
pub fn assert_400(resp: &Response) -> Value {
    assert_error(resp, 400, 107, "Invalid parameters", None)
}

/// 412 errno 114; `existing` is the exact `details.existing` expected
/// (`None`: no `details` at all).
#[track_caller]
pub fn assert_412(resp: &Response, existing: Option<&Value>) {
    let mut expected = json!({"code": 412, "errno": 114, "error": "Precondition Failed",
                              "message": "Resource was modified meanwhile"});
    if let Some(e) = existing {
        expected["details"] = json!({"existing": e});
    }
    assert_error(
        resp,
        412,
        114,
        "Precondition Failed",
        Some("Resource was modified meanwhile"),
    );
    assert_eq!(resp.json(), expected, "{resp}");
}

/// `ETag` is `"<ts>"` and `Last-Modified` is the same instant (seconds
/// truncated) as an IMF-fixdate.
#[track_caller]
pub fn assert_ts_headers(resp: &Response, ts: u64) {
    assert_eq!(resp.etag(), ts, "ETag\n{resp}");
    let lm = resp
        .header("Last-Modified")
        .unwrap_or_else(|| panic!("no Last-Modified\n{resp}"));
    let parsed = httpdate::parse_http_date(lm)
        .unwrap_or_else(|e| panic!("Last-Modified {lm:?}: {e}\n{resp}"));
    let secs = parsed.duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert_eq!(
        secs,
        ts / 1000,
        "Last-Modified {lm:?} is not ETag {ts} in seconds\n{resp}"
    );
    assert!(
        lm.ends_with(" GMT") && lm.len() == 29,
        "Last-Modified {lm:?} is not an IMF-fixdate\n{resp}"
    );
}

/// The object's `last_modified` as u64.
#[track_caller]
pub fn lm(data: &Value) -> u64 {
    data["last_modified"]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer last_modified in {data}"))
}

/// Ids of a `{"data": [...]}` list, in order.
pub fn ids(body: &Value) -> Vec<String> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list body: {body}"))
        .iter()
        .map(|o| {
            o["id"]
                .as_str()
                .unwrap_or_else(|| panic!("object without id: {o}"))
                .to_string()
        })
        .collect()
}

/// A permissions object with every list sorted (principals form a set; the
/// reference's order is not stable).
pub fn sorted_perms(perms: &Value) -> Value {
    let mut out = serde_json::Map::new();
    if let Some(obj) = perms.as_object() {
        for (k, v) in obj {
            let mut list: Vec<String> = v
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| p.as_str().unwrap_or_default().to_string())
                .collect();
            list.sort();
            out.insert(k.clone(), json!(list));
        }
    }
    Value::Object(out)
}

/// Asserts `resp`'s `permissions` equals `expected` as sets.
#[track_caller]
pub fn assert_perms(resp: &Response, expected: Value) {
    assert_eq!(
        sorted_perms(&resp.json()["permissions"]),
        sorted_perms(&expected),
        "permissions\n{resp}"
    );
}

// ---- table-driven requests -------------------------------------------------

/// One row of a request table (pocketbase `tests/api.go` style).
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub method: &'static str,
    pub path: String,
    pub user: Option<User>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Value>,
    pub status: u16,
    /// Expected `errno` when the status is an error.
    pub errno: Option<u64>,
    /// Expected to be a subset of the response body (objects: keys
    /// recursively; other values: equal).
    pub contains: Option<Value>,
}

impl Case {
    pub fn new(
        method: &'static str,
        path: impl Into<String>,
        user: Option<&User>,
        status: u16,
    ) -> Case {
        let path = path.into();
        Case {
            name: format!("{method} {path}"),
            method,
            path,
            user: user.cloned(),
            headers: Vec::new(),
            body: None,
            status,
            errno: None,
            contains: None,
        }
    }
    pub fn name(mut self, name: impl Into<String>) -> Case {
        self.name = name.into();
        self
    }
    pub fn body(mut self, body: Value) -> Case {
        self.body = Some(body);
        self
    }
    pub fn header(mut self, k: &str, v: impl Into<String>) -> Case {
        self.headers.push((k.to_string(), v.into()));
        self
    }
    pub fn errno(mut self, errno: u64) -> Case {
        self.errno = Some(errno);
        self
    }
    pub fn contains(mut self, v: Value) -> Case {
        self.contains = Some(v);
        self
    }

    pub fn request(&self, s: &Server) -> Request {
        let mut r = s.req(self.method, &self.path).auth(self.user.as_ref());
        for (k, v) in &self.headers {
            r = r.header(k, v);
        }
        if let Some(b) = &self.body {
            r = r.json(b);
        }
        r
    }

    /// Runs the case; `Err` describes a mismatch.
    pub fn check(&self, s: &Server) -> Result<Response, String> {
        let resp = self.request(s).send();
        if resp.status != self.status {
            return Err(format!(
                "[{}] expected status {}, got:\n{resp}",
                self.name, self.status
            ));
        }
        if let Some(errno) = self.errno {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            if body["errno"] != json!(errno) {
                return Err(format!(
                    "[{}] expected errno {errno}, got:\n{resp}",
                    self.name
                ));
            }
        }
        if let Some(expected) = &self.contains {
            let body: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            if !json_contains(&body, expected) {
                return Err(format!(
                    "[{}] body does not contain {expected}, got:\n{resp}",
                    self.name
                ));
            }
        }
        Ok(resp)
    }
}

/// Runs every case in order and panics listing all mismatches.
#[track_caller]
pub fn run_cases(s: &Server, cases: &[Case]) {
    let failures: Vec<String> = cases.iter().filter_map(|c| c.check(s).err()).collect();
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n\n")
    );
}

/// `expected` is contained in `actual`: objects key by key, arrays of the
/// same length element by element (both recursively), anything else equal.
pub fn json_contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, ev)| a.get(k).map(|av| json_contains(av, ev)).unwrap_or(false)),
        (Value::Array(a), Value::Array(e)) => {
            a.len() == e.len() && a.iter().zip(e).all(|(av, ev)| json_contains(av, ev))
        }
        _ => actual == expected,
    }
}
