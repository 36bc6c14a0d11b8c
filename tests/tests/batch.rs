//! api-core section 17 (issue 4): `POST /v1/batch`. Defaults merged into
//! each request, limits, sub-responses in order with `/v1` paths, a 4xx
//! sub-request that leaves the others done, and a batch's writes committed
//! as one log record: a `_since` poller never sees half a batch.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use base64::Engine as _;
use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

fn batch(user: Option<&User>, body: Value) -> Response {
    s().req("POST", "/batch").auth(user).json(&body).send()
}

/// `(status, path, body)` of each sub-response.
fn answers(resp: &Response) -> Vec<(u64, String, Value)> {
    assert_eq!(resp.status, 200, "{resp}");
    resp.json()["responses"]
        .as_array()
        .unwrap_or_else(|| panic!("no responses\n{resp}"))
        .iter()
        .map(|r| {
            (
                r["status"].as_u64().unwrap(),
                r["path"].as_str().unwrap().to_string(),
                r["body"].clone(),
            )
        })
        .collect()
}

fn invalid(name: Value, description: &str, message: &str) -> Value {
    json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
           "details": [{"location": "body", "name": name, "description": description}]})
}

#[test]
fn defaults_paths_and_sub_responses() {
    let owner = User::fresh("owner");
    let uid = s().userid(&owner);
    let (bid, records) = new_collection(s(), &owner);
    let resp = batch(
        Some(&owner),
        json!({
            "defaults": {"method": "PUT", "body": {"data": {"a": 1, "o": {"x": 1}}}},
            "requests": [
                {"path": format!("{records}/r1"), "body": {"data": {"o": {"y": 2}}}},
                {"path": format!("/v1{records}/r2")},
                {"path": format!("{records}/r1"), "headers": {"If-None-Match": "*"}},
                {"method": "GET", "path": format!("{records}?_sort=id&_fields=a")},
                {"method": "GET", "path": format!("{records}/")},
                {"method": "HEAD", "path": records.clone()},
                {"method": "GET", "path": "/nope"},
                {"method": "PATCH", "path": format!("{records}/zz")},
                {"method": "DELETE", "path": format!("{records}/r2")},
                {"method": "post", "path": records.clone(), "body": {"data": {"id": "bad id"}}},
                {"method": "GET", "path": format!("{records}?_since=abc")},
                {"method": "GET", "path": "/"},
            ]
        }),
    );
    assert!(resp.header("ETag").is_none(), "a batch has no ETag\n{resp}");
    let got = answers(&resp);
    let full = format!("/v1{records}");
    let r1 = got[0].2["data"].clone();
    let r2 = got[1].2["data"].clone();
    let expected = vec![
        (
            201,
            format!("{full}/r1"),
            json!({"data": {"id": "r1", "last_modified": lm(&r1), "a": 1, "o": {"x": 1, "y": 2}},
                   "permissions": {"write": [uid]}}),
        ),
        (
            201,
            format!("{full}/r2"),
            json!({"data": {"id": "r2", "last_modified": lm(&r2), "a": 1, "o": {"x": 1}},
                   "permissions": {"write": [uid]}}),
        ),
        (
            412,
            format!("{full}/r1"),
            json!({"code": 412, "errno": 114, "error": "Precondition Failed",
                   "message": "Resource was modified meanwhile",
                   "details": {"existing": r1}}),
        ),
        (
            200,
            full.clone(),
            json!({"data": [{"id": "r1", "last_modified": lm(&r1), "a": 1},
                            {"id": "r2", "last_modified": lm(&r2), "a": 1}]}),
        ),
        // The trailing-slash redirect is followed; the final path reported.
        (200, full.clone(), json!({"data": [r2, r1]})),
        (200, full.clone(), json!("")),
        (
            404,
            "/v1/nope".to_string(),
            json!({"code": 404, "errno": 111, "error": "Not Found",
                   "message": "The resource you are looking for could not be found."}),
        ),
        (
            404,
            format!("{full}/zz"),
            json!({"code": 404, "errno": 110, "error": "Not Found",
                   "details": {"id": "zz", "resource_name": "record"}}),
        ),
        (
            200,
            format!("{full}/r2"),
            json!({"data": {"id": "r2", "last_modified": got[8].2["data"]["last_modified"], "deleted": true}}),
        ),
        (
            400,
            full.clone(),
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "path: Invalid object id",
                   "details": [{"location": "path", "name": null, "description": "Invalid object id"}]}),
        ),
        (
            400,
            full.clone(),
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "_since in querystring: \"abc\" is not a number",
                   "details": [{"location": "querystring", "name": "_since",
                                "description": "\"abc\" is not a number"}]}),
        ),
    ];
    for (i, want) in expected.iter().enumerate() {
        assert_eq!(&got[i], want, "sub-response {i}\n{resp}");
    }
    assert_eq!(got[11].0, 200);
    assert_eq!(got[11].2["user"]["id"], json!(uid), "{resp}");
    // Sub-response headers: canonical names, the object's ETag.
    let first = &resp.json()["responses"][0]["headers"];
    assert_eq!(first["ETag"], json!(format!("\"{}\"", lm(&r1))), "{resp}");
    assert_eq!(first["Content-Type"], json!("application/json"), "{resp}");
    // What the batch did is there.
    s().get(&format!("{records}/r1"), &owner).expect(200);
    assert_404(&s().get(&format!("{records}/r2"), &owner), "r2", "record");
    let _ = bid;
}

#[test]
fn sub_requests_inherit_and_override_the_batch_headers() {
    let owner = User::fresh("owner");
    let other = User::fresh("other");
    let (_, records) = new_collection(s(), &owner);
    let other_auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", other.name, other.password))
    );
    let resp = batch(
        Some(&owner),
        json!({"requests": [
            {"method": "PUT", "path": format!("{records}/mine"), "body": {"data": {}}},
            {"method": "PUT", "path": format!("{records}/theirs"), "body": {"data": {}},
             "headers": {"Authorization": other_auth}},
            {"path": "/", "headers": {"Authorization": other_auth}},
        ]}),
    );
    let got = answers(&resp);
    assert_eq!(got[0].0, 201, "{resp}");
    assert_eq!(got[1].0, 403, "{resp}");
    assert_eq!(got[2].2["user"]["id"], json!(s().userid(&other)), "{resp}");
    // The batch endpoint itself needs no authentication; sub-requests are
    // anonymous then.
    let resp = batch(
        None,
        json!({"requests": [{"path": format!("{records}/mine")}, {"path": "/"}]}),
    );
    let got = answers(&resp);
    assert_eq!(got[0].0, 401, "{resp}");
    assert!(got[1].2.get("user").is_none(), "{resp}");
}

#[test]
fn limits_and_bad_batches() {
    let owner = User::fresh("owner");
    let many: Vec<Value> = (0..26).map(|_| json!({"path": "/"})).collect();
    let cases: Vec<(Value, Value)> = vec![
        (
            json!({"requests": many}),
            invalid(
                json!("requests"),
                "Number of requests is limited to 25",
                "Number of requests is limited to 25",
            ),
        ),
        (
            json!({"requests": [{"path": "/"}, {"path": "/batch"}]}),
            invalid(
                json!("requests"),
                "Recursive call on /batch endpoint is forbidden.",
                "requests in body: Recursive call on /batch endpoint is forbidden.",
            ),
        ),
        (
            json!({"requests": [{"path": "/v1/batch", "method": "POST"}]}),
            invalid(
                json!("requests"),
                "Recursive call on /batch endpoint is forbidden.",
                "requests in body: Recursive call on /batch endpoint is forbidden.",
            ),
        ),
        (
            json!({}),
            invalid(json!("requests"), "Required", "requests in body: Required"),
        ),
        (
            json!({"requests": [{"path": "x"}]}),
            invalid(
                json!("requests.0.path"),
                "Invalid path",
                "requests.0.path in body: Invalid path",
            ),
        ),
        (
            json!({"requests": [{"method": "FOO", "path": "/"}]}),
            invalid(
                json!("requests.0.method"),
                "\"FOO\" is not one of GET, HEAD, DELETE, TRACE, POST, PUT, PATCH",
                "requests.0.method in body: \"FOO\" is not one of GET, HEAD, DELETE, TRACE, POST, PUT, PATCH",
            ),
        ),
        (
            json!({"requests": [{"path": "/", "foo": 1}]}),
            invalid(
                json!("requests.0"),
                "Unrecognized keys in mapping: \"{'foo': ...}\"",
                "requests.0 in body: Unrecognized keys in mapping: \"{'foo': ...}\"",
            ),
        ),
        (
            json!({"requests": [{"path": "/", "headers": {"a": 1}}]}),
            invalid(
                json!("requests.0.headers"),
                "Headers must be strings",
                "requests.0.headers in body: Headers must be strings",
            ),
        ),
    ];
    for (body, want) in cases {
        let resp = batch(Some(&owner), body.clone());
        assert_eq!((resp.status, resp.json()), (400, want), "{body}\n{resp}");
    }
    // Only the batch endpoint is refused: a collection may be named
    // `batches` (the reference refuses any path containing "/batch").
    let (bid, _) = new_collection(s(), &owner);
    let resp = batch(
        Some(&owner),
        json!({"requests": [
            {"method": "PUT", "path": format!("/buckets/{bid}/collections/batches")},
            {"method": "PUT", "path": format!("/buckets/{bid}/collections/batches/records/batch1"), "body": {"data": {}}},
        ]}),
    );
    let statuses: Vec<u64> = answers(&resp).iter().map(|a| a.0).collect();
    assert_eq!(statuses, [201, 201], "{resp}");
    // Exactly the limit is fine; no requests is fine.
    let max: Vec<Value> = (0..25).map(|_| json!({"path": "/__heartbeat__"})).collect();
    assert_eq!(
        answers(&batch(Some(&owner), json!({"requests": max}))).len(),
        25
    );
    let resp = batch(Some(&owner), json!({"requests": []}));
    assert_eq!((resp.status, resp.json()), (200, json!({"responses": []})));
    // Only POST.
    let resp = s().req("GET", "/batch").user(&owner).send();
    assert_error(&resp, 405, 115, "Method Not Allowed", None);
    // Not JSON.
    let resp = s()
        .req("POST", "/batch")
        .header("Content-Type", "application/json")
        .body("{")
        .send();
    assert_400(&resp);
}

#[test]
fn batch_max_requests_is_a_setting() {
    if Server::external_mode() {
        return;
    }
    let srv = Server::start_with_env(&[("KINTO_BATCH_MAX_REQUESTS", "3")]);
    let root = srv.req("GET", "/").send().expect(200).json();
    assert_eq!(root["settings"]["batch_max_requests"], json!(3));
    let three: Vec<Value> = (0..3).map(|_| json!({"path": "/"})).collect();
    srv.req("POST", "/batch")
        .json(&json!({"requests": three}))
        .send()
        .expect(200);
    let four: Vec<Value> = (0..4).map(|_| json!({"path": "/"})).collect();
    let resp = srv
        .req("POST", "/batch")
        .json(&json!({"requests": four}))
        .send();
    assert_eq!(
        (resp.status, resp.json()),
        (
            400,
            invalid(
                json!("requests"),
                "Number of requests is limited to 3",
                "Number of requests is limited to 3",
            )
        ),
        "{resp}"
    );
}

/// A failed sub-request does not stop the later ones nor undo the earlier
/// ones; reads see the writes before them.
#[test]
fn a_failed_sub_request_leaves_the_others_done() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = batch(
        Some(&owner),
        json!({"requests": [
            {"method": "PUT", "path": format!("{records}/a"), "body": {"data": {"v": 1}}},
            {"method": "PUT", "path": format!("{records}/a"), "body": {"data": {"v": 2}},
             "headers": {"If-Match": "\"1\""}},
            {"method": "PUT", "path": format!("{records}/b"), "body": {"data": {"v": 1}}},
            {"method": "PUT", "path": format!("{records}/bad"), "body": {"data": [1]}},
            {"method": "GET", "path": format!("{records}?_sort=id")},
            {"method": "PATCH", "path": format!("{records}/b"), "body": {"data": {"w": 2}}},
            {"method": "PATCH", "path": format!("{records}/missing"), "body": {"data": {}}},
            {"method": "DELETE", "path": format!("{records}/a")},
        ]}),
    );
    let got = answers(&resp);
    let statuses: Vec<u64> = got.iter().map(|g| g.0).collect();
    assert_eq!(statuses, [201, 412, 201, 400, 200, 200, 404, 200], "{resp}");
    assert_eq!(
        ids(&got[4].2),
        ["a", "b"],
        "the read sees the writes before it"
    );
    assert_eq!(got[4].2["data"][0]["v"], json!(1));
    // Everything that said 2xx is there.
    let list = s()
        .get(&format!("{records}?_since=0&_sort=id"), &owner)
        .json();
    assert_eq!(ids(&list), ["a", "b"]);
    assert_eq!(list["data"][0]["deleted"], json!(true));
    assert_eq!(list["data"][1]["w"], json!(2));
    assert_404(&s().get(&format!("{records}/bad"), &owner), "bad", "record");
    // Each write has its own, increasing timestamp.
    let stamps: Vec<u64> = [0, 2, 5, 7]
        .iter()
        .map(|&i| lm(&got[i].2["data"]))
        .collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");
}

/// A batch's writes are one log record: a `_since` poller that follows the
/// ETags sees each batch whole in one answer, never split, and each record
/// exactly once.
#[test]
fn a_poller_never_sees_half_a_batch() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let start = s().get(&records, &owner).expect(200).etag();
    const BATCHES: usize = 25;
    const SIZE: usize = 6;
    let done = Arc::new(AtomicBool::new(false));
    let writer = {
        let owner = owner.clone();
        let records = records.clone();
        let done = done.clone();
        std::thread::spawn(move || {
            for b in 0..BATCHES {
                let requests: Vec<Value> = (0..SIZE)
                    .map(|j| json!({"path": format!("{records}/b{b}-{j}"), "body": {"data": {"batch": b}}}))
                    .collect();
                let resp = s()
                    .req("POST", "/batch")
                    .user(&owner)
                    .json(&json!({"defaults": {"method": "PUT"}, "requests": requests}))
                    .send();
                let statuses: Vec<u64> = answers(&resp).iter().map(|a| a.0).collect();
                assert_eq!(statuses, vec![201; SIZE], "{resp}");
            }
            done.store(true, Ordering::SeqCst);
        })
    };
    let mut since = start;
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut polls = 0;
    loop {
        let finished = done.load(Ordering::SeqCst);
        let resp = s()
            .get(&format!("{records}?_since={since}"), &owner)
            .expect(200);
        polls += 1;
        let mut per_batch: BTreeMap<u64, usize> = BTreeMap::new();
        for r in resp.json()["data"].as_array().unwrap() {
            *per_batch.entry(r["batch"].as_u64().unwrap()).or_default() += 1;
            *seen
                .entry(r["id"].as_str().unwrap().to_string())
                .or_default() += 1;
        }
        for (b, n) in per_batch {
            assert_eq!(
                n, SIZE,
                "poll {polls} saw {n} of batch {b}'s {SIZE} records\n{resp}"
            );
        }
        since = resp.etag();
        if finished {
            break;
        }
    }
    writer.join().unwrap();
    assert_eq!(seen.len(), BATCHES * SIZE);
    let repeated: BTreeSet<&String> = seen
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(k, _)| k)
        .collect();
    assert!(repeated.is_empty(), "seen twice: {repeated:?}");
}

/// Docs/kinto-differences.md: a batch whose writes add up to more than one
/// log record holds gets 413 errno 113, and nothing of it is written.
#[test]
fn a_batch_too_large_for_one_record_writes_nothing() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let big = "x".repeat(60 * 1024);
    let requests: Vec<Value> = (0..20)
        .map(|i| json!({"method": "PUT", "path": format!("{records}/r{i}"), "body": {"data": {"big": big}}}))
        .collect();
    let resp = batch(Some(&owner), json!({"requests": requests}));
    assert_error(&resp, 413, 113, "Request Entity Too Large", None);
    assert_eq!(s().get(&records, &owner).json(), json!({"data": []}));
}
