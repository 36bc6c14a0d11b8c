//! api-core section 2 (content negotiation, the `{data, permissions}`
//! envelope) and section 3's PUT and plain-JSON PATCH semantics.

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

fn invalid(name: &str, description: &str, location: &str) -> Value {
    let message = if name.is_empty() {
        description.to_string()
    } else {
        format!("{name} in {location}: {description}")
    };
    json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
           "details": [{"location": location, "name": name, "description": description}]})
}

#[test]
fn accept_without_json_is_406() {
    let owner = User::fresh("owner");
    let bid = new_bucket(s(), &owner);
    let resp = s()
        .req("GET", &format!("/buckets/{bid}"))
        .user(&owner)
        .header("Accept", "text/html")
        .send();
    assert_eq!(resp.status, 406, "{resp}");
    assert_eq!(
        resp.json(),
        json!({"code": 406, "errno": 107, "error": "Invalid parameters",
               "message": "Accept header should be one of ['application/json']",
               "details": [{"location": "header", "name": "Accept",
                            "description": "Accept header should be one of ['application/json']"}]}),
        "{resp}"
    );
    // Wildcards and JSON are fine.
    for accept in [
        "*/*",
        "application/json",
        "application/*",
        "text/html, application/json;q=0.9",
    ] {
        s().req("GET", &format!("/buckets/{bid}"))
            .user(&owner)
            .header("Accept", accept)
            .send()
            .expect(200);
    }
}

#[test]
fn content_type_rules() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r1");
    let json_only = "Content-Type header should be one of ['application/json']";
    let wrong_ct = json!({"code": 415, "errno": 107, "error": "Invalid parameters", "message": json_only,
        "details": [{"location": "header", "name": "Content-Type", "description": json_only}]});
    for (method, ct) in [
        ("PUT", "text/plain"),
        ("POST", "text/plain"),
        ("PUT", "Application/JSON"),
        ("PUT", "application/x-www-form-urlencoded"),
    ] {
        let target = if method == "POST" {
            records.clone()
        } else {
            url.clone()
        };
        let resp = s()
            .req(method, &target)
            .user(&owner)
            .header("Content-Type", ct)
            .body("{}")
            .send();
        assert_eq!(
            (resp.status, resp.json()),
            (415, wrong_ct.clone()),
            "{method} {ct}\n{resp}"
        );
    }
    // Parameters are fine.
    s().req("PUT", &url)
        .user(&owner)
        .header("Content-Type", "application/json; charset=utf-8")
        .body("{}")
        .send()
        .expect(201);
    // PATCH accepts the three JSON types, others are 415.
    for ct in ["application/json", "application/merge-patch+json"] {
        s().req("PATCH", &url)
            .user(&owner)
            .header("Content-Type", ct)
            .body(r#"{"data": {"x": 1}}"#)
            .send()
            .expect(200);
    }
    let resp = s()
        .req("PATCH", &url)
        .user(&owner)
        .header("Content-Type", "text/plain")
        .body("{}")
        .send();
    let body = assert_error(&resp, 415, 107, "Invalid parameters", None);
    assert_eq!(body["details"][0]["name"], "Content-Type", "{resp}");
}

#[test]
fn malformed_json_is_400_107() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r1");
    let bodies: [&[u8]; 5] = [
        b"{\"data\":",
        b"{\"data\": {\"a\": NaN}}",
        b"{\"data\": {\"a\": \"\xff\xfe\"}}",
        b"[1, 2",
        b"nul",
    ];
    for raw in bodies {
        let resp = s()
            .req("PUT", &url)
            .user(&owner)
            .header("Content-Type", "application/json")
            .body(raw.to_vec())
            .send();
        let body = assert_400(&resp);
        assert!(
            body["message"]
                .as_str()
                .unwrap_or_default()
                .starts_with("Invalid JSON"),
            "{resp}"
        );
        assert_eq!(body["details"][0]["location"], "body", "{resp}");
    }
    // Nothing was created.
    assert_404(&s().get(&url, &owner), "r1", "record");
}

#[test]
fn empty_body_and_duplicate_keys() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = s()
        .req("PUT", &format!("{records}/r1"))
        .user(&owner)
        .header("Content-Type", "application/json")
        .send()
        .expect(201);
    assert_eq!(
        resp.data(),
        json!({"id": "r1", "last_modified": lm(&resp.data())})
    );
    let resp = s()
        .req("POST", &records)
        .user(&owner)
        .header("Content-Type", "application/json")
        .send()
        .expect(201);
    assert_eq!(resp.data().as_object().unwrap().len(), 2, "{resp}");
    let resp = s()
        .req("PUT", &format!("{records}/r2"))
        .user(&owner)
        .header("Content-Type", "application/json")
        .body(r#"{"data": {"a": 1, "a": 2}}"#)
        .send()
        .expect(201);
    assert_eq!(resp.data()["a"], 2);
}

#[test]
fn responses_are_application_json_with_ids_and_timestamps() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let data = json!({"text": "é😀 ok \\ \" \n", "nested": {"deep": [1, {"x": null}], "t": true}, "n": -3.5, "big": 9007199254740993_u64});
    let resp = s()
        .put(&format!("{records}/r1"), &owner, json!({"data": data}))
        .expect(201);
    assert_eq!(resp.header("Content-Type"), Some("application/json"));
    let mut expected = data.clone();
    expected["id"] = json!("r1");
    expected["last_modified"] = json!(lm(&resp.data()));
    assert_eq!(resp.data(), expected);
    let got = s().get(&format!("{records}/r1"), &owner).expect(200);
    assert_eq!(got.header("Content-Type"), Some("application/json"));
    assert_eq!(got.data(), expected);
    let list = s().get(&records, &owner).expect(200);
    assert_eq!(list.header("Content-Type"), Some("application/json"));
    assert_eq!(
        list.json(),
        json!({"data": [expected]}),
        "plural bodies have only `data`"
    );
}

/// A NUL character in a string or a key is refused with a 400 (issue 4:
/// bad input, never silently accepted): the reference's memory backend stores
/// it, its PostgreSQL backend answers 500. Cairn refuses it on every backend.
#[test]
fn nul_characters_in_strings_are_refused() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for data in [json!({"nul": "a\u{0}b"}), json!({"\u{0}key": 1})] {
        let resp = s()
            .put(&format!("{records}/r1"), &owner, json!({"data": data}))
            .expect(400);
        assert_eq!(resp.json()["errno"], 107);
    }
    s().get(&format!("{records}/r1"), &owner).expect(404);
}

/// Cairn decision (docs/kinto-differences.md): JSON nested deeper than 64
/// levels is refused; ordinary depths are fine.
#[test]
fn very_deep_json_is_refused() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let nest = |depth: usize| {
        let mut v = json!(1);
        for _ in 0..depth {
            v = json!({ "k": v });
        }
        v
    };
    s().put(&format!("{records}/ok"), &owner, json!({"data": nest(40)}))
        .expect(201);
    let resp = s().put(
        &format!("{records}/deep"),
        &owner,
        json!({"data": nest(200)}),
    );
    assert_400(&resp);
    assert_404(
        &s().get(&format!("{records}/deep"), &owner),
        "deep",
        "record",
    );
}

#[test]
fn envelope_validation_errors() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let url = format!("{records}/r1");
    let check = |url: &str, body: Value, expected: Value| {
        for method in ["PUT", "POST", "PATCH"] {
            if method == "PATCH" && !url.ends_with("/r1") {
                continue;
            }
            let target = if method == "POST" {
                records.clone()
            } else {
                url.to_string()
            };
            let resp = s().req(method, &target).user(&owner).json(&body).send();
            assert_eq!(
                (resp.status, resp.json()),
                (400, expected.clone()),
                "{method} {body}\n{resp}"
            );
        }
    };
    s().put(&url, &owner, json!({})).expect(201);
    check(
        &url,
        json!({"data": {}, "foo": 1}),
        invalid("", "Unrecognized keys in mapping: \"{'foo': 1}\"", "body"),
    );
    check(
        &url,
        json!({"data": null}),
        invalid(
            "data",
            "\"None\" is not a mapping type: Does not implement dict-like functionality.",
            "body",
        ),
    );
    check(
        &url,
        json!({"data": [1]}),
        invalid(
            "data",
            "\"[1]\" is not a mapping type: Does not implement dict-like functionality.",
            "body",
        ),
    );
    check(
        &url,
        json!({"permissions": {"read": "x"}}),
        invalid("permissions.read", "\"x\" is not iterable", "body"),
    );
    check(
        &url,
        json!({"permissions": {"bogus": ["x"]}}),
        invalid("permissions", "\"bogus\" is not one of read, write", "body"),
    );
    let resp = s().put(
        &format!("/buckets/{bid}/collections/c"),
        &owner,
        json!({"permissions": {"bogus": ["x"]}}),
    );
    assert_eq!(
        resp.json(),
        invalid(
            "permissions",
            "\"bogus\" is not one of read, write, record:create",
            "body"
        ),
        "{resp}"
    );
    let resp = s().put(
        &format!("/buckets/{bid}"),
        &owner,
        json!({"permissions": {"bogus": ["x"]}}),
    );
    assert_eq!(
        resp.json(),
        invalid(
            "permissions",
            "\"bogus\" is not one of read, write, collection:create, group:create",
            "body"
        ),
        "{resp}"
    );
    let resp = s().put(
        &format!("/buckets/{bid}/groups/g"),
        &owner,
        json!({"permissions": {"record:create": ["x"]}}),
    );
    assert_eq!(
        resp.json(),
        invalid(
            "permissions",
            "\"record:create\" is not one of read, write",
            "body"
        ),
        "{resp}"
    );
    // Record unchanged by all of this.
    assert_eq!(s().get(&url, &owner).data().as_object().unwrap().len(), 2);
}

#[test]
fn a_field_named_permissions_marker_is_rejected_not_500() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = s().put(
        &format!("{records}/r1"),
        &owner,
        json!({"data": {"__permissions__": {"read": ["x"]}}}),
    );
    assert_400(&resp);
}

#[test]
fn data_may_be_omitted() {
    let owner = User::fresh("owner");
    let reader = User::fresh("reader");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r1");
    s().put(&url, &owner, json!({"data": {"keep": 1}}))
        .expect(201);
    // PUT of an existing object without data keeps the data.
    let rid = s().userid(&reader);
    let resp = s()
        .put(&url, &owner, json!({"permissions": {"read": [rid]}}))
        .expect(200);
    assert_eq!(resp.data()["keep"], 1, "{resp}");
    // POST without data creates an empty object.
    let resp = s()
        .post(&records, &owner, json!({"permissions": {"read": [rid]}}))
        .expect(201);
    assert_eq!(resp.data().as_object().unwrap().len(), 2, "{resp}");
}

#[test]
fn deleted_object_shape() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    s().put(
        &format!("{records}/r1"),
        &owner,
        json!({"data": {"a": 1}, "permissions": {"read": ["system.Everyone"]}}),
    )
    .expect(201);
    s().put(
        &format!("/buckets/{bid}/groups/g"),
        &owner,
        json!({"data": {"members": []}}),
    )
    .expect(201);
    for url in [
        format!("{records}/r1"),
        format!("/buckets/{bid}/groups/g"),
        format!("/buckets/{bid}/collections/c"),
        format!("/buckets/{bid}"),
    ] {
        let resp = s().delete(&url, &owner).expect(200);
        let id = url.rsplit('/').next().unwrap();
        let t = lm(&resp.data());
        assert_eq!(
            resp.json(),
            json!({"data": {"id": id, "last_modified": t, "deleted": true}}),
            "{resp}"
        );
        assert_ts_headers(&resp, t);
    }
}

#[test]
fn put_replaces_data_and_keeps_or_sets_permissions() {
    let owner = User::fresh("owner");
    let reader = User::fresh("reader");
    let (_, records) = new_collection(s(), &owner);
    let (oid, rid) = (s().userid(&owner), s().userid(&reader));
    let url = format!("{records}/r1");
    s().put(
        &url,
        &owner,
        json!({"data": {"a": 1, "b": 2}, "permissions": {"read": [rid]}}),
    )
    .expect(201);

    // Data replaced; permissions absent: ACL unchanged.
    let resp = s().put(&url, &owner, json!({"data": {"c": 3}})).expect(200);
    assert_eq!(
        resp.data(),
        json!({"c": 3, "id": "r1", "last_modified": lm(&resp.data())})
    );
    assert_perms(&resp, json!({"read": [rid], "write": [oid]}));

    // Permissions present: exactly these, plus the caller in write.
    let resp = s()
        .put(
            &url,
            &owner,
            json!({"data": {"c": 3}, "permissions": {"write": ["x:other"]}}),
        )
        .expect(200);
    assert_perms(&resp, json!({"write": ["x:other", oid]}));
    let resp = s()
        .put(&url, &owner, json!({"permissions": {"read": []}}))
        .expect(200);
    assert_perms(&resp, json!({"write": [oid]}));
    assert_eq!(resp.data()["c"], 3);
    s().get(&url, &reader).expect(403);
}

#[test]
fn patch_merges_top_level_keys() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let oid = s().userid(&owner);
    let url = format!("{records}/r1");
    let first = s()
        .put(
            &url,
            &owner,
            json!({"data": {"a": 1, "o": {"x": 1, "y": 2}, "l": [1, 2], "k": "keep"}}),
        )
        .expect(201);
    let resp = s()
        .patch(
            &url,
            &owner,
            json!({"data": {"a": null, "o": {"z": 3}, "l": [3], "new": true}}),
        )
        .expect(200);
    let t = lm(&resp.data());
    assert!(t > lm(&first.data()));
    assert_eq!(
        resp.data(),
        json!({"a": null, "o": {"z": 3}, "l": [3], "k": "keep", "new": true, "id": "r1", "last_modified": t})
    );
    assert_eq!(s().get(&url, &owner).data(), resp.data());

    // {"data": {}} bumps last_modified, nothing else.
    let resp2 = s().patch(&url, &owner, json!({"data": {}})).expect(200);
    assert!(lm(&resp2.data()) > t);
    let mut same = resp.data();
    same["last_modified"] = resp2.data()["last_modified"].clone();
    assert_eq!(resp2.data(), same);

    // Permissions: each type sent replaces that type; [] empties it.
    let resp = s()
        .patch(&url, &owner, json!({"permissions": {"read": ["p1", "p2"]}}))
        .expect(200);
    assert_perms(&resp, json!({"read": ["p1", "p2"], "write": [oid]}));
    let resp = s()
        .patch(&url, &owner, json!({"permissions": {"write": ["p3"]}}))
        .expect(200);
    assert_perms(&resp, json!({"read": ["p1", "p2"], "write": ["p3", oid]}));
    let resp = s()
        .patch(&url, &owner, json!({"permissions": {"read": []}}))
        .expect(200);
    assert_perms(&resp, json!({"write": ["p3", oid]}));
}

#[test]
fn patch_with_nothing_is_400() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r1");
    s().put(&url, &owner, json!({})).expect(201);
    let resp = s().patch(&url, &owner, json!({}));
    let expected = json!({"code": 400, "errno": 107, "error": "Invalid parameters",
        "message": "Provide at least one of data or permissions",
        "details": [{"location": "body", "name": "data", "description": "Provide at least one of data or permissions"}]});
    assert_eq!((resp.status, resp.json()), (400, expected), "{resp}");
}

#[test]
fn who_sees_permissions() {
    let owner = User::fresh("owner");
    let reader = User::fresh("reader");
    let bucket_writer = User::fresh("bw");
    let bid = new_bucket(s(), &owner);
    let (oid, rid, wid) = (
        s().userid(&owner),
        s().userid(&reader),
        s().userid(&bucket_writer),
    );
    s().patch(
        &format!("/buckets/{bid}"),
        &owner,
        json!({"permissions": {"write": [wid]}}),
    )
    .expect(200);
    s().put(&format!("/buckets/{bid}/collections/c"), &owner, json!({}))
        .expect(201);
    let url = format!("/buckets/{bid}/collections/c/records/r1");
    s().put(
        &url,
        &owner,
        json!({"data": {"a": 1}, "permissions": {"read": [rid]}}),
    )
    .expect(201);

    assert_perms(
        &s().get(&url, &owner).expect(200),
        json!({"read": [rid], "write": [oid]}),
    );
    // A reader: key present, empty.
    let resp = s().get(&url, &reader).expect(200);
    assert_eq!(resp.json()["permissions"], json!({}), "{resp}");
    // Inherited write does not count.
    let resp = s().get(&url, &bucket_writer).expect(200);
    assert_eq!(resp.json()["permissions"], json!({}), "{resp}");
    // After an edit, the bucket writer is a listed writer (writer rule).
    let resp = s()
        .patch(&url, &bucket_writer, json!({"data": {"b": 2}}))
        .expect(200);
    assert_perms(&resp, json!({"read": [rid], "write": [oid, wid]}));
    assert_perms(
        &s().get(&url, &bucket_writer),
        json!({"read": [rid], "write": [oid, wid]}),
    );
    // The owner of the bucket sees the bucket's ACL; the bucket writer too.
    assert_perms(
        &s().get(&format!("/buckets/{bid}"), &owner),
        json!({"write": [oid, wid]}),
    );
    assert_perms(
        &s().get(&format!("/buckets/{bid}"), &bucket_writer),
        json!({"write": [oid, wid]}),
    );
}
