//! The permissions endpoint, `/__flush__` and Prometheus `/__metrics__`
//! (issue 5) over HTTP.

use cairn_tests::server::Options;
use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::with_plugins()
}

fn entry<'a>(body: &'a Value, uri: &str) -> Option<&'a Value> {
    body["data"]
        .as_array()?
        .iter()
        .find(|e| e["uri"] == json!(uri))
}

fn sorted(v: &Value) -> Vec<String> {
    let mut out: Vec<String> = v
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    out.sort();
    out
}

#[test]
fn permissions_endpoint_lists_what_the_caller_holds() {
    let s = s();
    let alice = User::fresh("alice");
    let bob = User::fresh("bob");
    let bob_id = s.userid(&bob);
    let bid = new_bucket(s, &alice);
    s.put(
        &format!("/buckets/{bid}/collections/c"),
        &alice,
        json!({"permissions": {"read": [bob_id]}}),
    )
    .expect(201);
    s.put(
        &format!("/buckets/{bid}/collections/c/records/r"),
        &alice,
        json!({"data": {}}),
    )
    .expect(201);

    let body = s.get("/permissions", &alice).expect(200).json();
    let b = entry(&body, &format!("/buckets/{bid}")).expect("bucket entry");
    assert_eq!(b["resource_name"], json!("bucket"));
    assert_eq!(b["bucket_id"], json!(bid));
    assert_eq!(b["id"], json!(bid));
    assert_eq!(
        sorted(&b["permissions"]),
        vec![
            "collection:create",
            "group:create",
            "read",
            "read:attributes",
            "write"
        ]
    );
    let r = entry(&body, &format!("/buckets/{bid}/collections/c/records/r")).expect("record");
    assert_eq!(r["record_id"], json!("r"));
    assert_eq!(r["collection_id"], json!("c"));
    assert_eq!(sorted(&r["permissions"]), vec!["read", "write"]);
    let root = entry(&body, "/").expect("root entry");
    assert!(sorted(&root["permissions"]).contains(&"bucket:create".to_string()));

    // Bob holds read on the collection only; children are not expanded.
    let body = s.get("/permissions", &bob).expect(200).json();
    let c = entry(&body, &format!("/buckets/{bid}/collections/c")).expect("collection");
    assert_eq!(sorted(&c["permissions"]), vec!["read", "read:attributes"]);
    assert!(entry(&body, &format!("/buckets/{bid}")).is_none());
    assert!(entry(&body, &format!("/buckets/{bid}/collections/c/records/r")).is_none());

    // Anonymous: what system.Everyone holds, e.g. account:create.
    let anon = s.req("GET", "/permissions").send().expect(200).json();
    let root = entry(&anon, "/").expect("root entry");
    assert_eq!(sorted(&root["permissions"]), vec!["account:create"]);

    // Filters and the default -uri order.
    let only = s
        .get("/permissions?resource_name=record", &alice)
        .expect(200)
        .json();
    assert!(only["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["resource_name"] == json!("record")));
    let uris: Vec<String> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["uri"].as_str().unwrap().to_string())
        .collect();
    let mut desc = uris.clone();
    desc.sort_by(|a, b| b.cmp(a));
    assert_eq!(uris, desc);
}

#[test]
fn flush_empties_everything_accounts_included() {
    if Server::external_mode() {
        eprintln!("skipped: would empty the shared reference server");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        env: vec![
            (
                "KINTO_INCLUDES".into(),
                "kinto.plugins.default_bucket kinto.plugins.accounts kinto.plugins.flush".into(),
            ),
            (
                "KINTO_ACCOUNT_CREATE_PRINCIPALS".into(),
                "system.Everyone".into(),
            ),
        ],
        ..Options::default()
    };
    let mut s = Server::start_with(&dir.path().join("data"), opts, None);
    let alice = User::fresh("alice");
    let (bid, records) = new_collection(&s, &alice);
    s.post(&records, &alice, json!({"data": {}})).expect(201);
    s.req("PUT", "/accounts/zed")
        .json(&json!({"data": {"password": "z"}}))
        .send()
        .expect(201);
    let zed = User::new("zed", "z");
    assert_eq!(s.userid(&zed), "account:zed");

    assert_error(
        &s.req("GET", "/__flush__").send(),
        405,
        115,
        "Method Not Allowed",
        None,
    );
    let resp = s.req("POST", "/__flush__").send();
    assert_eq!(resp.status, 202, "{resp}");
    assert_eq!(resp.json(), json!({}));
    assert_403(&s.get(&format!("/buckets/{bid}"), &alice));
    assert_eq!(
        ids(&s.get("/buckets", &alice).expect(200).json()),
        Vec::<String>::new()
    );
    let root = s.get("/", &zed).expect(200).json();
    assert!(root["user"]["id"]
        .as_str()
        .unwrap()
        .starts_with("basicauth:"));
    // The flush is in the log: it survives a restart.
    s.restart();
    assert_403(&s.get(&format!("/buckets/{bid}"), &alice));
}

#[test]
fn metrics_count_by_route_template() {
    if Server::external_mode() {
        eprintln!("skipped: the reference runs without the prometheus plugin");
        return;
    }
    let s = s();
    let alice = User::fresh("alice");
    let bid = new_bucket(s, &alice);
    s.get(&format!("/buckets/{bid}"), &alice).expect(200);
    s.req("GET", "/nowhere/at/all").send();
    let resp = s.req("GET", "/__metrics__").send().expect(200);
    assert_eq!(
        resp.header("Content-Type"),
        Some("text/plain; version=1.0.0; charset=utf-8")
    );
    let text = resp.text();
    assert!(
        text.contains("# TYPE kinto_request_summary_total counter"),
        "{text}"
    );
    assert!(
        text.contains(
            "kinto_request_summary_total{method=\"GET\",endpoint=\"bucket-object\",status=\"200\"}"
        ),
        "{text}"
    );
    assert!(
        text.contains("endpoint=\"unknown\",status=\"404\""),
        "{text}"
    );
    assert!(text.contains("kinto_request_duration_seconds_bucket{method=\"PUT\",endpoint=\"bucket-object\",le=\"+Inf\"}"));
    assert!(!text.contains(&bid), "raw URLs never become labels");
    let root = s.req("GET", "/").send().expect(200).json();
    assert_eq!(
        root["capabilities"]["prometheus"]["prefix"],
        json!("kinto_")
    );
}
