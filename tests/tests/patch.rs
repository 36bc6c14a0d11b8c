//! api-core section 3 (issue 4): PATCH with `application/merge-patch+json`
//! (RFC 7396) and `application/json-patch+json` (RFC 6902, with Kinto's set
//! operations on `/permissions/<perm>/<principal>`), bad patches, and the
//! `Response-Behavior` header. A refused patch changes nothing.

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";

fn patch_as(url: &str, user: &User, content_type: &str, body: &Value) -> Response {
    s().req("PATCH", url)
        .user(user)
        .header("Content-Type", content_type)
        .body(body.to_string())
        .send()
}

/// A record with `data`, owned by `owner`: its URL.
fn record(owner: &User, data: Value) -> String {
    let (_, records) = new_collection(s(), owner);
    let url = format!("{records}/r");
    s().put(&url, owner, json!({"data": data})).expect(201);
    url
}

/// `data` without `id` and `last_modified`.
fn fields(data: &Value) -> Value {
    let mut d = data.clone();
    if let Some(o) = d.as_object_mut() {
        o.remove("id");
        o.remove("last_modified");
    }
    d
}

fn invalid(name: Value, description: &str, message: &str) -> Value {
    json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
           "details": [{"location": "body", "name": name, "description": description}]})
}

#[test]
fn merge_patch_is_rfc_7396() {
    let owner = User::fresh("owner");
    let uid = s().userid(&owner);
    let url = record(
        &owner,
        json!({"a": 1, "o": {"x": 1, "y": 2}, "l": [1, 2], "s": "str"}),
    );
    // The spec's example: null removes at any depth, arrays are replaced.
    let resp = patch_as(
        &url,
        &owner,
        MERGE,
        &json!({"data": {"a": null, "o": {"x": null, "z": 3}, "l": [3]}}),
    )
    .expect(200);
    assert_eq!(
        fields(&resp.data()),
        json!({"o": {"y": 2, "z": 3}, "l": [3], "s": "str"})
    );
    // Into a value that is not an object: it becomes one (RFC 7396).
    let resp = patch_as(
        &url,
        &owner,
        MERGE,
        &json!({"data": {"s": {"k": 1, "n": null}}}),
    )
    .expect(200);
    assert_eq!(resp.data()["s"], json!({"k": 1}));
    let resp = patch_as(&url, &owner, MERGE, &json!({"data": {"l": {"0": "x"}}})).expect(200);
    assert_eq!(resp.data()["l"], json!({"0": "x"}));
    // Objects replace scalars and scalars replace objects, deep down.
    let resp = patch_as(
        &url,
        &owner,
        MERGE,
        &json!({"data": {"o": {"y": {"deep": {"er": true}}, "z": [null]}}}),
    )
    .expect(200);
    assert_eq!(
        resp.data()["o"],
        json!({"y": {"deep": {"er": true}}, "z": [null]})
    );
    // Removing a key that is not there is fine; the same patch twice is the
    // same object.
    let p = json!({"data": {"nope": null, "o": {"y": {"deep": null}}}});
    let once = patch_as(&url, &owner, MERGE, &p).expect(200).data();
    let twice = patch_as(&url, &owner, MERGE, &p).expect(200).data();
    assert_eq!(fields(&once), fields(&twice));
    assert_eq!(once["o"], json!({"y": {}, "z": [null]}));
    // An empty data patch changes nothing but the timestamp.
    let same = patch_as(&url, &owner, MERGE, &json!({"data": {}}))
        .expect(200)
        .data();
    assert_eq!(fields(&same), fields(&twice));
    assert!(lm(&same) > lm(&twice));
    // Permissions merge the same way: a list replaces that type, null
    // removes it; the writer stays.
    let resp = patch_as(
        &url,
        &owner,
        MERGE,
        &json!({"permissions": {"read": ["system.Everyone", "alice"]}}),
    )
    .expect(200);
    assert_perms(
        &resp,
        json!({"read": ["system.Everyone", "alice"], "write": [uid]}),
    );
    let resp = patch_as(&url, &owner, MERGE, &json!({"permissions": {"read": null}})).expect(200);
    assert_perms(&resp, json!({"write": [uid]}));
    // The stored object is what was answered.
    let got = s().get(&url, &owner).expect(200);
    assert_eq!(got.data(), resp.data());
}

#[test]
fn merge_patch_errors() {
    let owner = User::fresh("owner");
    let url = record(&owner, json!({"a": 1}));
    let before = s().get(&url, &owner).json();
    let cases = [
        (
            json!({"data": "x"}),
            invalid(json!("data"), "\"x\" is not a mapping type: Does not implement dict-like functionality.", "data in body: \"x\" is not a mapping type: Does not implement dict-like functionality."),
        ),
        (
            json!({"permissions": {"read": "abc"}}),
            invalid(
                json!("permissions.read"),
                "\"abc\" is not iterable",
                "permissions.read in body: \"abc\" is not iterable",
            ),
        ),
        (
            json!({}),
            invalid(
                json!("data"),
                "Provide at least one of data or permissions",
                "Provide at least one of data or permissions",
            ),
        ),
        (
            json!({"data": {"id": "other"}}),
            invalid(
                json!("id"),
                "Object id does not match existing object",
                "Object id does not match existing object",
            ),
        ),
    ];
    for (body, want) in cases {
        let resp = patch_as(&url, &owner, MERGE, &body);
        assert_eq!((resp.status, resp.json()), (400, want), "{body}\n{resp}");
    }
    assert_eq!(s().get(&url, &owner).json(), before);
}

#[test]
fn json_patch_on_data() {
    let owner = User::fresh("owner");
    let url = record(&owner, json!({"a": 1, "l": [1, 2], "o": {"x": 1}}));
    let ops = json!([
        {"op": "add", "path": "/data/l/-", "value": 3},
        {"op": "add", "path": "/data/l/0", "value": 0},
        {"op": "replace", "path": "/data/a", "value": "one"},
        {"op": "remove", "path": "/data/o/x"},
        {"op": "add", "path": "/data/o/k~1s", "value": {"n": null}},
        {"op": "copy", "from": "/data/l", "path": "/data/m"},
        {"op": "move", "from": "/data/a", "path": "/data/b"},
        {"op": "test", "path": "/data/m/3", "value": 3},
    ]);
    let resp = patch_as(&url, &owner, JSON_PATCH, &ops).expect(200);
    assert_eq!(
        fields(&resp.data()),
        json!({"l": [0, 1, 2, 3], "o": {"k/s": {"n": null}}, "m": [0, 1, 2, 3], "b": "one"})
    );
    assert_eq!(s().get(&url, &owner).data(), resp.data());
    // An empty list of operations changes nothing but the timestamp.
    let same = patch_as(&url, &owner, JSON_PATCH, &json!([])).expect(200);
    assert_eq!(fields(&same.data()), fields(&resp.data()));
}

#[test]
fn json_patch_on_permission_sets() {
    let owner = User::fresh("owner");
    let uid = s().userid(&owner);
    let alice = User::fresh("alice");
    let alice_id = s().userid(&alice);
    let url = record(&owner, json!({"a": 1}));
    s().get(&url, &alice).expect(403);
    let resp = patch_as(
        &url,
        &owner,
        JSON_PATCH,
        &json!([
            {"op": "add", "path": format!("/permissions/read/{alice_id}")},
            {"op": "add", "path": "/permissions/read/~1buckets~1b~1groups~1g"},
            {"op": "add", "path": "/permissions/write/system.Authenticated"},
        ]),
    )
    .expect(200);
    assert_perms(
        &resp,
        json!({"read": [alice_id, "/buckets/b/groups/g"],
               "write": [uid, "system.Authenticated"]}),
    );
    // The principal can read now; adding twice keeps one.
    s().get(&url, &alice).expect(200);
    let resp = patch_as(
        &url,
        &owner,
        JSON_PATCH,
        &json!([
            {"op": "add", "path": format!("/permissions/read/{alice_id}")},
            {"op": "remove", "path": "/permissions/read/~1buckets~1b~1groups~1g"},
            {"op": "remove", "path": "/permissions/write/system.Authenticated"},
        ]),
    )
    .expect(200);
    assert_perms(&resp, json!({"read": [alice_id], "write": [uid]}));
    let resp = patch_as(
        &url,
        &owner,
        JSON_PATCH,
        &json!([{"op": "remove", "path": format!("/permissions/read/{alice_id}")}]),
    )
    .expect(200);
    assert_perms(&resp, json!({"write": [uid]}));
    s().get(&url, &alice).expect(403);
    // A whole list as the value.
    let resp = patch_as(
        &url,
        &owner,
        JSON_PATCH,
        &json!([{"op": "add", "path": "/permissions/read", "value": ["p1", "p2"]}]),
    )
    .expect(200);
    assert_perms(&resp, json!({"read": ["p1", "p2"], "write": [uid]}));
    // Data and permissions in one patch.
    let resp = patch_as(
        &url,
        &owner,
        JSON_PATCH,
        &json!([
            {"op": "replace", "path": "/data/a", "value": 2},
            {"op": "remove", "path": "/permissions/read/p1"},
        ]),
    )
    .expect(200);
    assert_eq!(resp.data()["a"], json!(2));
    assert_perms(&resp, json!({"read": ["p2"], "write": [uid]}));
}

#[test]
fn bad_json_patches_are_400_and_change_nothing() {
    let owner = User::fresh("owner");
    let url = record(&owner, json!({"a": 1, "l": [1]}));
    let before = s().get(&url, &owner).json();
    let failed = |d: &str| {
        invalid(
            Value::Null,
            &format!("JSON Patch operation failed: {d}"),
            &format!("body: JSON Patch operation failed: {d}"),
        )
    };
    let cases: Vec<(Value, Value)> = vec![
        // A string where a principal list belongs is not a list of
        // characters.
        (
            json!([{"op": "add", "path": "/permissions/read", "value": "abc"}]),
            invalid(
                json!("permissions.read"),
                "\"abc\" is not iterable",
                "permissions.read in body: \"abc\" is not iterable",
            ),
        ),
        (
            json!([{"op": "add", "path": "/permissions/write", "value": ["a", 1]}]),
            invalid(
                json!("permissions.write.1"),
                "1 is not a string: {'': ''}",
                "permissions.write.1 in body: 1 is not a string: {'': ''}",
            ),
        ),
        // Only read and write are principal sets.
        (
            json!([{"op": "add", "path": "/permissions/record:create/x"}]),
            failed("The operation does not contain a 'value' member"),
        ),
        (
            json!([{"op": "add", "path": "/data/x"}]),
            failed("The operation does not contain a 'value' member"),
        ),
        (
            json!([{"op": "move", "path": "/data/x"}]),
            failed("The operation does not contain a 'from' member"),
        ),
        (
            json!([{"op": "test", "path": "/data/a", "value": 99}]),
            failed("operation '/0' failed at path '/data/a': value did not match"),
        ),
        (
            json!([{"op": "replace", "path": "/data/nope/x", "value": 1}]),
            failed("operation '/0' failed at path '/data/nope/x': path is invalid"),
        ),
        (
            json!([{"op": "remove", "path": "/data/l/5"}]),
            failed("operation '/0' failed at path '/data/l/5': path is invalid"),
        ),
        // A later failure undoes the earlier operations.
        (
            json!([{"op": "replace", "path": "/data/a", "value": 2},
                   {"op": "test", "path": "/data/a", "value": 1}]),
            failed("operation '/0' failed at path '/data/a': value did not match"),
        ),
        (
            json!([{"op": "replace", "path": "/data/id", "value": "other"}]),
            invalid(
                json!("id"),
                "Object id does not match existing object",
                "Object id does not match existing object",
            ),
        ),
        (
            json!([{"op": "replace", "path": "/data", "value": 3}]),
            invalid(json!("data"), "data is not a mapping type", "data is not a mapping type"),
        ),
        (
            json!([{"op": "remove", "path": "/data"}]),
            invalid(json!("data"), "data is not a mapping type", "data is not a mapping type"),
        ),
        // Shapes: Kinto's (colander's) messages.
        (
            json!([{"path": "/data/a", "value": 1}]),
            invalid(json!("0.op"), "Required", "0.op in body: Required"),
        ),
        (
            json!([{"op": "add", "value": 1}]),
            invalid(json!("0.path"), "Required", "0.path in body: Required"),
        ),
        (
            json!([{"op": "add", "path": "/data/a", "value": 1}, {"op": "bogus", "path": "/data/a"}]),
            invalid(
                json!("1.op"),
                "\"bogus\" is not one of test, add, remove, replace, move, copy",
                "1.op in body: \"bogus\" is not one of test, add, remove, replace, move, copy",
            ),
        ),
        (
            json!([{"op": 1, "path": "/data/a"}]),
            invalid(
                json!("0.op"),
                "1 is not a string: {'op': ''}",
                "0.op in body: 1 is not a string: {'op': ''}",
            ),
        ),
        (
            json!([{"op": "add", "path": "data/a", "value": 1}]),
            invalid(
                json!("0.path"),
                "String does not match expected pattern",
                "0.path in body: String does not match expected pattern",
            ),
        ),
        (
            json!([1]),
            invalid(
                json!("0"),
                "\"1\" is not a mapping type: Does not implement dict-like functionality.",
                "0 in body: \"1\" is not a mapping type: Does not implement dict-like functionality.",
            ),
        ),
        (
            json!({"op": "add", "path": "/data/a", "value": 1}),
            invalid(
                Value::Null,
                "{\"op\":\"add\",\"path\":\"/data/a\",\"value\":1} is not a list",
                "body: {\"op\":\"add\",\"path\":\"/data/a\",\"value\":1} is not a list",
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (ops, want) in cases {
        let resp = patch_as(&url, &owner, JSON_PATCH, &ops);
        let got: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
        if resp.status != 400 || got != want {
            failures.push(format!("{ops}\nexpected {want}\n{resp}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    assert_eq!(s().get(&url, &owner).json(), before);
    // Not JSON at all.
    let resp = s()
        .req("PATCH", &url)
        .user(&owner)
        .header("Content-Type", JSON_PATCH)
        .body("[{")
        .send();
    assert_400(&resp);
    // Another content type.
    let resp = s()
        .req("PATCH", &url)
        .user(&owner)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send();
    assert_eq!(
        (resp.status, resp.json()),
        (
            415,
            json!({"code": 415, "errno": 107, "error": "Invalid parameters",
                   "message": "Content-Type header should be one of ['application/json', 'application/merge-patch+json', 'application/json-patch+json']",
                   "details": [{"location": "header", "name": "Content-Type",
                                "description": "Content-Type header should be one of ['application/json', 'application/merge-patch+json', 'application/json-patch+json']"}]})
        ),
        "{resp}"
    );
}

#[test]
fn response_behavior() {
    let owner = User::fresh("owner");
    let url = record(&owner, json!({"a": 1, "b": 2, "l": [1]}));
    let send = |behavior: &str, ct: &str, body: Value| {
        s().req("PATCH", &url)
            .user(&owner)
            .header("Content-Type", ct)
            .header("Response-Behavior", behavior)
            .body(body.to_string())
            .send()
    };
    // light: the keys sent, as stored.
    let resp = send(
        "light",
        "application/json",
        json!({"data": {"a": 1, "l": [9], "new": true}}),
    )
    .expect(200);
    assert_eq!(
        resp.json(),
        json!({"data": {"a": 1, "l": [9], "new": true}})
    );
    // diff: only the sent keys whose stored value differs from what was sent.
    let resp = send(
        "diff",
        "application/json",
        json!({"data": {"a": 5, "l": [9]}}),
    )
    .expect(200);
    assert_eq!(resp.json(), json!({"data": {}}));
    let resp = send("light", MERGE, json!({"data": {"o": {"x": 1}}})).expect(200);
    assert_eq!(resp.json(), json!({"data": {"o": {"x": 1}}}));
    // full (the default): the whole envelope.
    let resp = send("full", "application/json", json!({"data": {"b": 3}})).expect(200);
    assert_eq!(
        fields(&resp.data()),
        json!({"a": 5, "b": 3, "l": [9], "new": true, "o": {"x": 1}})
    );
    assert!(resp.json()["permissions"].is_object(), "{resp}");
    // Anything else: 400, nothing written.
    let before = s().get(&url, &owner).json();
    let resp = send("bogus", "application/json", json!({"data": {"b": 4}}));
    assert_eq!(
        (resp.status, resp.json()),
        (
            400,
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "Response-Behavior in header: \"bogus\" is not one of full, light, diff",
                   "details": [{"location": "header", "name": "Response-Behavior",
                                "description": "\"bogus\" is not one of full, light, diff"}]})
        ),
        "{resp}"
    );
    assert_eq!(s().get(&url, &owner).json(), before);
}
