//! api-core sections 1 and 3: URL layout, id rules, methods, and the
//! create / replace / update / delete table for every object type.

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

/// The four object types, as URLs below a fresh bucket `bid` (with
/// collection `c`): (resource name, parent plural URL).
fn plurals(bid: &str) -> Vec<(&'static str, String)> {
    vec![
        ("collection", format!("/buckets/{bid}/collections")),
        ("group", format!("/buckets/{bid}/groups")),
        ("record", format!("/buckets/{bid}/collections/c/records")),
    ]
}

fn invalid_id_body() -> Value {
    json!({"code": 400, "errno": 107, "error": "Invalid parameters",
           "message": "path: Invalid object id",
           "details": [{"location": "path", "name": null, "description": "Invalid object id"}]})
}

#[test]
fn valid_ids_are_accepted_for_every_type() {
    let owner = User::fresh("owner");
    let (bid, _) = new_collection(s(), &owner);
    let long = "x".repeat(300);
    for (kind, plural) in plurals(&bid) {
        for id in ["ab_", "a-b", "A1", "1", long.as_str()] {
            let resp = s()
                .put(&format!("{plural}/{id}"), &owner, json!({}))
                .expect(201);
            assert_eq!(resp.data()["id"], json!(id), "{kind}\n{resp}");
            let got = s().get(&format!("{plural}/{id}"), &owner).expect(200);
            assert_eq!(got.data()["id"], json!(id), "{kind}");
        }
    }
    // Buckets live in one global namespace: same shapes, made unique.
    let digits = format!("{}{}", now_ms(), std::process::id());
    for id in [
        format!("{}_", fresh_id("b")),
        format!("A{}", fresh_id("x")),
        digits,
        format!("{}{}", fresh_id("l"), long),
    ] {
        let resp = s()
            .put(&format!("/buckets/{id}"), &owner, json!({}))
            .expect(201);
        assert_eq!(resp.data()["id"], json!(id));
    }
}

#[test]
fn ids_are_case_sensitive() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    s().put(
        &format!("{records}/Abc"),
        &owner,
        json!({"data": {"v": "upper"}}),
    )
    .expect(201);
    s().put(
        &format!("{records}/abc"),
        &owner,
        json!({"data": {"v": "lower"}}),
    )
    .expect(201);
    assert_eq!(
        s().get(&format!("{records}/Abc"), &owner).data()["v"],
        "upper"
    );
    assert_eq!(
        s().get(&format!("{records}/abc"), &owner).data()["v"],
        "lower"
    );
    s().put(&format!("/buckets/{bid}/collections/C"), &owner, json!({}))
        .expect(201);
    s().get(&format!("/buckets/{bid}/collections/C/records"), &owner)
        .expect(200);
    assert_eq!(
        s().get(&format!("/buckets/{bid}/collections/C/records"), &owner)
            .data(),
        json!([])
    );
}

#[test]
fn invalid_ids_in_last_segment_are_400_for_every_type() {
    let owner = User::fresh("owner");
    let (bid, _) = new_collection(s(), &owner);
    let mut urls: Vec<String> = vec!["/buckets".to_string()];
    urls.extend(plurals(&bid).into_iter().map(|(_, p)| p));
    for plural in &urls {
        for id in ["a.b", "-ab", "_ab", "a%20b", "%C3%A9", "a%2Bb"] {
            let url = format!("{plural}/{id}");
            let resp = s().put(&url, &owner, json!({}));
            assert_eq!(resp.status, 400, "{resp}");
            assert_eq!(resp.json(), invalid_id_body(), "{resp}");
            if plural != "/buckets" {
                let resp = s().get(&url, &owner);
                assert_eq!(resp.json(), invalid_id_body(), "{resp}");
            }
        }
    }
}

#[test]
fn permission_errors_come_before_invalid_id() {
    let owner = User::fresh("owner");
    let stranger = User::fresh("stranger");
    let (bid, records) = new_collection(s(), &owner);
    assert_403(&s().put(
        &format!("/buckets/{bid}/collections/a.b"),
        &stranger,
        json!({}),
    ));
    assert_403(&s().get(&format!("{records}/a.b"), &stranger));
    assert_401(
        &s().req("PUT", &format!("/buckets/{bid}/collections/a.b"))
            .json(&json!({}))
            .send(),
    );
    assert_401(&s().req("PUT", "/buckets/a.b").json(&json!({})).send());
}

#[test]
fn invalid_id_in_a_parent_segment_is_404_111() {
    let owner = User::fresh("owner");
    let (bid, _) = new_collection(s(), &owner);
    let resp = s().get(&format!("/buckets/{bid}/collections/a.b/records/x"), &owner);
    assert_eq!(
        resp.json(),
        json!({"code": 404, "errno": 111, "error": "Not Found",
               "details": {"id": "a.b", "resource_name": "collection"}}),
        "{resp}"
    );
    assert_eq!(resp.status, 404);
}

#[test]
fn post_without_id_generates_ids() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let short = |id: &str| {
        let b = id.as_bytes();
        b.len() == 8
            && b[0].is_ascii_alphanumeric()
            && b[1..]
                .iter()
                .all(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'-')
    };
    for url in [
        "/buckets".to_string(),
        format!("/buckets/{bid}/collections"),
        format!("/buckets/{bid}/groups"),
    ] {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..3 {
            let resp = s().post(&url, &owner, json!({})).expect(201);
            let id = resp.data()["id"].as_str().unwrap().to_string();
            assert!(
                short(&id),
                "generated id {id:?} for {url} is not 8 chars [a-zA-Z0-9][a-zA-Z0-9_-]{{7}}"
            );
            assert!(seen.insert(id));
            assert_ts_headers(&resp, lm(&resp.data()));
        }
    }
    let resp = s()
        .post(&records, &owner, json!({"data": {"a": 1}}))
        .expect(201);
    let id = resp.data()["id"].as_str().unwrap().to_string();
    assert_uuid4(&id);
    assert_eq!(
        resp.data(),
        json!({"a": 1, "id": id, "last_modified": lm(&resp.data())})
    );
}

#[track_caller]
fn assert_uuid4(id: &str) {
    let parts: Vec<&str> = id.split('-').collect();
    let lens: Vec<usize> = parts.iter().map(|p| p.len()).collect();
    assert_eq!(lens, vec![8, 4, 4, 4, 12], "not a UUID: {id}");
    assert!(
        id.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "not lowercase hex: {id}"
    );
    assert!(parts[2].starts_with('4'), "not a v4 UUID: {id}");
    assert!(
        matches!(&parts[3][..1], "8" | "9" | "a" | "b"),
        "not an RFC 4122 variant: {id}"
    );
}

#[test]
fn post_with_a_non_string_id_is_400() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for bad in [json!(5), json!("a.b"), json!(null), json!(["x"])] {
        let resp = s().post(&records, &owner, json!({"data": {"id": bad}}));
        assert_eq!(resp.status, 400, "{resp}");
        assert_400(&resp);
    }
    let resp = s().post(&records, &owner, json!({"data": {"id": 5}}));
    assert_eq!(resp.json(), invalid_id_body(), "{resp}");
}

#[test]
fn post_with_an_existing_id_returns_it_unchanged() {
    let owner = User::fresh("owner");
    let creator = User::fresh("creator");
    let (bid, records) = new_collection(s(), &owner);
    let created = s()
        .post(&records, &owner, json!({"data": {"id": "r1", "v": 1}}))
        .expect(201)
        .json();
    let again = s()
        .post(&records, &owner, json!({"data": {"id": "r1", "v": 2}}))
        .expect(200);
    assert_eq!(again.json(), created);
    assert_eq!(s().get(&format!("{records}/r1"), &owner).json(), created);

    // Other types too.
    for plural in [
        format!("/buckets/{bid}/collections"),
        format!("/buckets/{bid}/groups"),
    ] {
        let first = s()
            .post(&plural, &owner, json!({"data": {"id": "x1", "v": 1}}))
            .expect(201)
            .json();
        let second = s()
            .post(&plural, &owner, json!({"data": {"id": "x1", "v": 2}}))
            .expect(200);
        assert_eq!(second.json(), first);
    }

    // Someone who may create records but not read r1: 403, nothing changed.
    s().patch(
        &format!("/buckets/{bid}/collections/c"),
        &owner,
        json!({"permissions": {"record:create": ["system.Authenticated"]}}),
    )
    .expect(200);
    assert_403(&s().post(&records, &creator, json!({"data": {"id": "r1", "v": 3}})));
    assert_eq!(s().get(&format!("{records}/r1"), &owner).json(), created);
}

#[test]
fn put_with_a_different_data_id_is_400() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let expected = json!({"code": 400, "errno": 107, "error": "Invalid parameters",
        "message": "Object id does not match existing object",
        "details": [{"location": "body", "name": "id", "description": "Object id does not match existing object"}]});
    // Missing and existing targets, every type.
    s().put(&format!("{records}/r1"), &owner, json!({}))
        .expect(201);
    for url in [
        format!("{records}/r1"),
        format!("{records}/r2"),
        format!("/buckets/{bid}/collections/c"),
        format!("/buckets/{bid}/groups/g"),
        format!("/buckets/{bid}"),
    ] {
        let resp = s().put(&url, &owner, json!({"data": {"id": "other"}}));
        assert_eq!(
            (resp.status, resp.json()),
            (400, expected.clone()),
            "{resp}"
        );
        let resp = s().patch(&url, &owner, json!({"data": {"id": "other"}}));
        if url.ends_with("/r2") || url.ends_with("/g") {
            assert_eq!(resp.status, 404, "{resp}");
        } else {
            assert_eq!(
                (resp.status, resp.json()),
                (400, expected.clone()),
                "{resp}"
            );
        }
    }
    // The same id is fine.
    s().put(
        &format!("{records}/r1"),
        &owner,
        json!({"data": {"id": "r1"}}),
    )
    .expect(200);
}

/// Section 3's table, for collections, groups and records.
#[test]
fn create_replace_update_delete_table() {
    let owner = User::fresh("owner");
    let (bid, _) = new_collection(s(), &owner);
    for (kind, plural) in plurals(&bid) {
        let one = |id: &str| format!("{plural}/{id}");
        let body = if kind == "group" {
            json!({"data": {"members": []}})
        } else {
            json!({"data": {"v": 1}})
        };
        run_cases(
            s(),
            &[
                Case::new("POST", plural.clone(), Some(&owner), 201).body(json!({})),
                Case::new("POST", plural.clone(), Some(&owner), 201)
                    .body(json!({"data": {"id": "e1"}})),
                Case::new("POST", plural.clone(), Some(&owner), 200)
                    .body(json!({"data": {"id": "e1"}})),
                Case::new("PUT", one("e2"), Some(&owner), 201).body(body.clone()),
                Case::new("PUT", one("e2"), Some(&owner), 200).body(body.clone()),
                Case::new("PATCH", one("e2"), Some(&owner), 200).body(body.clone()),
                Case::new("GET", one("e2"), Some(&owner), 200),
                Case::new("HEAD", one("e2"), Some(&owner), 200),
                Case::new("DELETE", one("e2"), Some(&owner), 200)
                    .contains(json!({"data": {"id": "e2", "deleted": true}})),
                Case::new("GET", one("e2"), Some(&owner), 404).errno(110),
                Case::new("HEAD", one("e2"), Some(&owner), 404),
                Case::new("PATCH", one("e2"), Some(&owner), 404)
                    .body(body.clone())
                    .errno(110),
                Case::new("DELETE", one("e2"), Some(&owner), 404).errno(110),
                Case::new("PUT", one("e2"), Some(&owner), 201).body(body.clone()),
            ],
        );
        for method in ["GET", "PATCH", "DELETE"] {
            let mut r = s().req(method, &one("missing")).user(&owner);
            if method == "PATCH" {
                r = r.json(&body);
            }
            assert_404(&r.send(), "missing", kind);
        }
    }
}

#[test]
fn buckets_table() {
    let owner = User::fresh("owner");
    let bid = fresh_id("b");
    let url = format!("/buckets/{bid}");
    run_cases(
        s(),
        &[
            Case::new("PUT", url.clone(), Some(&owner), 201).body(json!({"data": {"v": 1}})),
            Case::new("PUT", url.clone(), Some(&owner), 200).body(json!({"data": {"v": 2}})),
            Case::new("PATCH", url.clone(), Some(&owner), 200)
                .body(json!({"data": {"w": 3}}))
                .contains(json!({"data": {"id": bid, "v": 2, "w": 3}})),
            Case::new("GET", url.clone(), Some(&owner), 200)
                .contains(json!({"data": {"id": bid, "v": 2, "w": 3}})),
            Case::new("HEAD", url.clone(), Some(&owner), 200),
            Case::new("POST", "/buckets", Some(&owner), 200)
                .body(json!({"data": {"id": bid}}))
                .contains(json!({"data": {"id": bid, "v": 2, "w": 3}})),
            Case::new("DELETE", url.clone(), Some(&owner), 200)
                .contains(json!({"data": {"id": bid, "deleted": true}})),
            // A missing bucket's parent is the root, which nobody "reads":
            // 403, existence is never revealed.
            Case::new("GET", url.clone(), Some(&owner), 403).errno(121),
            Case::new("PATCH", url.clone(), Some(&owner), 403)
                .body(json!({"data": {}}))
                .errno(121),
            Case::new("DELETE", url.clone(), Some(&owner), 403).errno(121),
            Case::new("PUT", url.clone(), Some(&owner), 201).body(json!({})),
        ],
    );
}

#[test]
fn successful_writes_send_etag_and_last_modified() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = s()
        .post(&records, &owner, json!({"data": {"a": 1}}))
        .expect(201);
    assert_ts_headers(&resp, lm(&resp.data()));
    let url = format!("{records}/{}", resp.data()["id"].as_str().unwrap());
    let resp = s().put(&url, &owner, json!({"data": {"a": 2}})).expect(200);
    assert_ts_headers(&resp, lm(&resp.data()));
    let resp = s()
        .patch(&url, &owner, json!({"data": {"b": 2}}))
        .expect(200);
    assert_ts_headers(&resp, lm(&resp.data()));
    let resp = s().get(&url, &owner).expect(200);
    assert_ts_headers(&resp, lm(&resp.data()));
    let resp = s().delete(&url, &owner).expect(200);
    assert_ts_headers(&resp, lm(&resp.data()));
    let resp = s()
        .put(&format!("{records}/new"), &owner, json!({}))
        .expect(201);
    assert_ts_headers(&resp, lm(&resp.data()));
}

#[test]
fn head_on_an_object_is_get_without_body() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    s().put(
        &format!("{records}/r1"),
        &owner,
        json!({"data": {"text": "héllo", "n": [1, 2, 3]}}),
    )
    .expect(201);
    for url in [
        format!("{records}/r1"),
        format!("/buckets/{bid}/collections/c"),
        format!("/buckets/{bid}"),
    ] {
        let get = s().get(&url, &owner).expect(200);
        let head = s().head(&url, &owner).expect(200);
        assert!(head.body.is_empty(), "{head}");
        assert_eq!(head.header("ETag"), get.header("ETag"));
        assert_eq!(head.header("Last-Modified"), get.header("Last-Modified"));
        assert_eq!(head.header("Content-Type"), get.header("Content-Type"));
        assert_eq!(
            head.header("Content-Length"),
            Some(get.body.len().to_string().as_str()),
            "{head}"
        );
    }
    // Missing: same status as GET.
    assert_eq!(s().head(&format!("{records}/nope"), &owner).status, 404);
}

#[test]
fn head_on_a_plural_has_counts_and_an_empty_list_length() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for i in 0..3 {
        s().put(
            &format!("{records}/r{i}"),
            &owner,
            json!({"data": {"i": i}}),
        )
        .expect(201);
    }
    let get = s().get(&records, &owner).expect(200);
    let head = s().head(&records, &owner).expect(200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("Total-Objects"), Some("3"), "{head}");
    assert_eq!(head.header("Total-Records"), Some("3"), "{head}");
    assert_eq!(head.header("Content-Length"), Some("11"), "{head}");
    assert_eq!(head.header("ETag"), get.header("ETag"));
    assert_eq!(head.header("Last-Modified"), get.header("Last-Modified"));
    assert_eq!(
        get.header("Total-Objects"),
        None,
        "GET sends no counts\n{get}"
    );
    assert_eq!(
        get.header("Total-Records"),
        None,
        "GET sends no counts\n{get}"
    );
}

#[test]
fn methods_not_allowed_are_405_with_allow() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let plural_allow = "HEAD, GET, POST, DELETE, OPTIONS";
    let object_allow = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";
    let cases = [
        ("PUT", "/buckets".to_string(), plural_allow),
        ("PATCH", format!("/buckets/{bid}/collections"), plural_allow),
        ("PUT", records.clone(), plural_allow),
        ("PUT", format!("/buckets/{bid}/groups"), plural_allow),
        ("POST", format!("/buckets/{bid}"), object_allow),
        (
            "POST",
            format!("/buckets/{bid}/collections/c"),
            object_allow,
        ),
        ("POST", format!("{records}/r1"), object_allow),
        ("TRACE", format!("{records}/r1"), object_allow),
    ];
    for (method, url, allow) in cases {
        let resp = s().req(method, &url).user(&owner).json(&json!({})).send();
        assert_eq!(resp.status, 405, "{resp}");
        assert_eq!(
            resp.json(),
            json!({"code": 405, "errno": 115, "error": "Method Not Allowed",
                   "message": "Method not allowed on this endpoint."}),
            "{resp}"
        );
        assert_eq!(resp.header("Allow"), Some(allow), "{resp}");
    }
}

#[test]
fn unversioned_paths_redirect_to_v1() {
    let host = &s().endpoint().host_port;
    for (path, location) in [
        ("/buckets", "/v1/buckets"),
        ("/v1", "/v1/"),
        ("/buckets/x?a=1", "/v1/buckets/x?a=1"),
    ] {
        let resp = s().req("GET", "").raw_path(path).send();
        assert_eq!(resp.status, 307, "{resp}");
        assert_eq!(
            resp.header("Location"),
            Some(format!("http://{host}{location}").as_str()),
            "{resp}"
        );
    }
}

#[test]
fn other_api_versions_are_404_116() {
    let owner = User::fresh("owner");
    let resp = s()
        .req("GET", "")
        .raw_path("/v2/buckets")
        .user(&owner)
        .send();
    let body = assert_error(&resp, 404, 116, "Not Found", None);
    assert_eq!(
        body["message"], "The requested API version is not available on this server.",
        "{resp}"
    );
}

#[test]
fn trailing_slashes_redirect_keeping_the_query() {
    let owner = User::fresh("owner");
    let (bid, _) = new_collection(s(), &owner);
    let host = &s().endpoint().host_port;
    for method in ["GET", "PUT", "DELETE", "POST"] {
        let resp = s()
            .req(method, &format!("/buckets/{bid}/collections/?a=1&b=2"))
            .user(&owner)
            .send();
        assert_eq!(resp.status, 307, "{resp}");
        assert_eq!(
            resp.header("Location"),
            Some(format!("http://{host}/v1/buckets/{bid}/collections?a=1&b=2").as_str()),
            "{resp}"
        );
        assert_eq!(resp.header("Cache-Control"), Some("max-age=3600"), "{resp}");
        assert!(resp.header("Expires").is_some(), "{resp}");
    }
}

#[test]
fn unknown_paths_are_404_111() {
    let owner = User::fresh("owner");
    for path in [
        "/unknown",
        "/buckets/b/unknown",
        "/buckets/b/collections/c/records/r/x",
    ] {
        let resp = s().req("GET", path).user(&owner).send();
        assert_eq!(
            (resp.status, resp.json()),
            (
                404,
                json!({"code": 404, "errno": 111, "error": "Not Found",
                       "message": "The resource you are looking for could not be found."})
            ),
            "{resp}"
        );
    }
}
