//! Differential check against the reference Kinto 26.5.0: one request
//! script sent to both servers, answers compared after normalisation
//! (timestamps, generated ids, user ids, host:port): status, body, and the
//! presence of the timestamp and count headers.
//!
//! Runs only when `KINTO_REF_URL` names a running reference, e.g.
//!
//! ```sh
//! ../shared/reference/start-kinto 8899 &
//! KINTO_REF_URL=http://127.0.0.1:8899/v1 cargo test -p cairn-tests --test differential
//! ```
//!
//! The script avoids the reference's known bugs (api-core section 22 and
//! the races issue 3 lists), which the other test files pin for Cairn.

use std::collections::HashMap;

use cairn_tests::*;
use serde_json::{json, Value};

struct Step {
    method: &'static str,
    path: String,
    user: Option<&'static str>,
    headers: Vec<(&'static str, String)>,
    body: Option<Value>,
}

fn step(method: &'static str, path: impl Into<String>, user: Option<&'static str>) -> Step {
    Step {
        method,
        path: path.into(),
        user,
        headers: Vec::new(),
        body: None,
    }
}

impl Step {
    fn body(mut self, b: Value) -> Step {
        self.body = Some(b);
        self
    }
    fn header(mut self, k: &'static str, v: &str) -> Step {
        self.headers.push((k, v.to_string()));
        self
    }
}

/// Placeholders for what legitimately differs between two servers.
#[derive(Default)]
struct Normalizer {
    replacements: Vec<(String, String)>,
    uuids: HashMap<String, String>,
}

impl Normalizer {
    fn text(&mut self, s: &str) -> String {
        let mut out = s.to_string();
        for (from, to) in &self.replacements {
            out = out.replace(from.as_str(), to);
        }
        // Generated record ids (UUID-shaped): numbered by first appearance.
        let looks_uuid = out.len() == 36 && out.chars().filter(|c| *c == '-').count() == 4;
        if looks_uuid {
            let n = self.uuids.len();
            return self
                .uuids
                .entry(out)
                .or_insert_with(|| format!("<uuid#{n}>"))
                .clone();
        }
        out
    }

    fn value(&mut self, v: &Value, key: Option<&str>) -> Value {
        match v {
            Value::Number(_) if key == Some("last_modified") => json!("<ts>"),
            Value::String(s) => json!(self.text(s)),
            Value::Array(items) => {
                let mut out: Vec<Value> = items.iter().map(|i| self.value(i, None)).collect();
                // Principal lists are sets.
                if matches!(
                    key,
                    Some(
                        "read"
                            | "write"
                            | "principals"
                            | "record:create"
                            | "group:create"
                            | "collection:create"
                    )
                ) {
                    out.sort_by_key(|a| a.to_string());
                }
                json!(out)
            }
            Value::Object(map) => {
                // Key order is not part of the answer.
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                let mut out = serde_json::Map::new();
                for k in keys {
                    out.insert(self.text(k), self.value(&map[k], Some(k)));
                }
                Value::Object(out)
            }
            other => other.clone(),
        }
    }

    fn response(&mut self, r: &Response, host: &str) -> String {
        let body = if r.body.is_empty() {
            Value::Null
        } else {
            match serde_json::from_slice::<Value>(&r.body) {
                Ok(v) => self.value(&v, None),
                Err(_) => json!("<non-JSON body>"),
            }
        };
        let location = r.header("Location").map(|l| l.replace(host, "<host>"));
        format!(
            "{} etag={} last-modified={} total={:?} location={:?} body={}",
            r.status,
            r.header("ETag").is_some(),
            r.header("Last-Modified").is_some(),
            r.header("Total-Objects"),
            location,
            body
        )
    }
}

fn script(b: &str) -> Vec<Step> {
    let c = format!("/buckets/{b}/collections/tasks");
    let r = format!("{c}/records");
    vec![
        step("GET", "/buckets/default", Some("alice")),
        step(
            "POST",
            "/buckets/default/collections/notes/records",
            Some("alice"),
        )
        .body(json!({"data": {"t": "hi"}})),
        step(
            "GET",
            "/buckets/default/collections/notes/records",
            Some("alice"),
        ),
        step(
            "HEAD",
            "/buckets/default/collections/notes/records",
            Some("alice"),
        ),
        step("GET", "/buckets/default", None),
        step("PUT", format!("/buckets/{b}"), Some("alice")).body(json!({"data": {"title": "t"}})),
        step("PATCH", format!("/buckets/{b}"), Some("alice"))
            .body(json!({"permissions": {"group:create": ["system.Authenticated"]}})),
        step("PUT", format!("/buckets/{b}/groups/friends"), Some("bob"))
            .body(json!({"data": {"members": ["x"]}})),
        step("GET", format!("/buckets/{b}/groups"), Some("bob")),
        step("GET", format!("/buckets/{b}/groups"), Some("carol")),
        step("PUT", c.clone(), Some("alice"))
            .body(json!({"permissions": {"record:create": ["system.Authenticated"]}})),
        step("PUT", format!("{r}/r1"), Some("alice"))
            .body(json!({"data": {"n": 1, "o": {"x": 1}}})),
        step("PATCH", format!("{r}/r1"), Some("alice"))
            .body(json!({"data": {"o": {"y": 2}, "n": null}})),
        step("PUT", format!("{r}/r1"), Some("bob")).body(json!({})),
        step("GET", format!("{r}/r1"), Some("bob")),
        step("GET", format!("{r}/r1"), None),
        step("POST", r.clone(), Some("bob")).body(json!({"data": {"id": "mine", "by": "bob"}})),
        step("GET", r.clone(), Some("bob")),
        step("HEAD", r.clone(), Some("bob")),
        step("GET", r.clone(), Some("alice")),
        step("GET", format!("{r}/nope"), Some("alice")),
        step("PATCH", format!("{r}/nope"), Some("alice")).body(json!({"data": {}})),
        step("DELETE", format!("{r}/mine"), Some("bob")),
        step("GET", format!("{r}?_since=0"), Some("alice")),
        step("GET", format!("{r}?_since=0&deleted=true"), Some("alice")),
        step("GET", format!("{r}?_since=-1"), Some("alice")),
        step("GET", format!("{r}?_before=abc"), Some("alice")),
        step("GET", format!("{r}/r1"), Some("alice")).header("If-Match", "\"1\""),
        step("GET", format!("{r}/r1"), Some("alice")).header("If-None-Match", "*"),
        step("PUT", format!("{r}/r1"), Some("alice"))
            .header("If-None-Match", "*")
            .body(json!({})),
        step("PUT", format!("{r}/r2"), Some("alice"))
            .header("If-Match", "*")
            .body(json!({})),
        step("GET", format!("{r}/r1"), Some("alice")).header("If-Match", "abc"),
        step("PUT", format!("{r}/a.b"), Some("alice")).body(json!({})),
        step("PUT", format!("{r}/r3"), Some("alice")).body(json!({"data": {"id": "other"}})),
        step("PUT", format!("{r}/r3"), Some("alice")).body(json!({"data": {}, "bogus": 1})),
        step("PUT", format!("{r}/r3"), Some("alice")).body(json!({"permissions": {"nope": []}})),
        step("PATCH", format!("{r}/r1"), Some("alice")).body(json!({})),
        step("PUT", r.clone(), Some("alice")).body(json!({})),
        step("POST", format!("{r}/r1"), Some("alice")).body(json!({})),
        step(
            "GET",
            format!("/buckets/{b}/collections/missing/records"),
            Some("alice"),
        ),
        step("GET", format!("/buckets/{b}/collections"), Some("carol")),
        step("GET", format!("/buckets/{b}"), Some("carol")),
        step("DELETE", c.clone(), Some("alice")),
        step(
            "GET",
            format!("/buckets/{b}/collections?_since=0"),
            Some("alice"),
        ),
        step("PUT", c.clone(), Some("alice")).body(json!({})),
        step("GET", format!("{r}?_since=0"), Some("alice")),
        step("DELETE", format!("/buckets/{b}"), Some("alice")),
        step("GET", format!("/buckets/{b}"), Some("alice")),
        step("GET", "/unknown", Some("alice")),
        step(
            "GET",
            "/buckets/default/collections/a.b/records",
            Some("alice"),
        ),
    ]
}

fn run(s: &Server, run_id: &str, bucket: &str) -> Vec<String> {
    let users: HashMap<&str, User> = ["alice", "bob", "carol"]
        .iter()
        .map(|n| (*n, User::new(&format!("{n}-{run_id}"), "pw")))
        .collect();
    let mut norm = Normalizer::default();
    norm.replacements
        .push((bucket.to_string(), "<b>".to_string()));
    for (name, u) in &users {
        norm.replacements
            .push((s.userid(u), format!("<uid:{name}>")));
        let personal = s.get("/buckets/default", u).expect(200).data()["id"]
            .as_str()
            .unwrap()
            .to_string();
        norm.replacements
            .push((personal, format!("<personal:{name}>")));
    }
    let host = s.endpoint().host_port.clone();
    let mut out = Vec::new();
    for st in script(bucket) {
        let mut req = s.req(st.method, &st.path).auth(st.user.map(|n| &users[n]));
        for (k, v) in &st.headers {
            req = req.header(k, v);
        }
        if let Some(b) = &st.body {
            req = req.json(b);
        }
        let resp = req.send();
        let line = norm.response(&resp, &host);
        out.push(format!(
            "{} {} as {:?} -> {}",
            st.method,
            st.path.replace(bucket, "<b>"),
            st.user,
            line
        ));
    }
    out
}

#[test]
fn same_answers_as_the_reference() {
    let Ok(reference) = std::env::var("KINTO_REF_URL") else {
        eprintln!("skipped: set KINTO_REF_URL to a running reference Kinto (see the file's doc)");
        return;
    };
    let cairn = Server::shared();
    let ours = run(cairn, &fresh_id("d"), &fresh_id("diff"));
    let theirs = run(
        &Server::external(&reference),
        &fresh_id("d"),
        &fresh_id("diff"),
    );
    if std::env::var_os("DIFF_VERBOSE").is_some() {
        for (a, b) in ours.iter().zip(&theirs) {
            eprintln!("cairn:     {a}\nreference: {b}\n");
        }
    }
    let diffs: Vec<String> = ours
        .iter()
        .zip(&theirs)
        .filter(|(a, b)| a != b)
        .map(|(a, b)| format!("cairn:     {a}\nreference: {b}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "{} of {} answers differ:\n\n{}",
        diffs.len(),
        ours.len(),
        diffs.join("\n\n")
    );
}
