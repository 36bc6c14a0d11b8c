//! api-core section 5 (401 vs 403 vs 404) and api-around 1.2 / 1.6 (Basic
//! Auth user ids, malformed credentials are anonymous).

use base64::Engine as _;
use cairn_tests::*;
use serde_json::json;

fn s() -> &'static Server {
    Server::shared()
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s)
}

/// api-around 1.2's vectors, with `userid_hmac_secret = s3cr3t` (the
/// harness passes it to every spawned server).
#[test]
fn basic_auth_user_ids_match_the_reference_derivation() {
    if s().is_external() {
        eprintln!("skipped: needs a server started with KINTO_USERID_HMAC_SECRET=s3cr3t");
        return;
    }
    let vectors = [
        (
            "alice",
            "wonderland",
            "c04127fd1715748ea49a5f9f7f3e50913287c0830d8aa4fb5a1e10f57914bdb5",
        ),
        (
            "alice",
            "",
            "ceb944757fc52cef6754a83ed56d5af0f55d2819c15f7d9b89df629a98dc6ef8",
        ),
        (
            "ali",
            "ce:pw",
            "2f14f7ca84a859a30170a711df38020dec5d4e158b3532706a015d82375cc555",
        ),
        (
            "admin",
            "wrong",
            "ff337e42f7b44aaf969838edaaabdcd1b97d0fd910407c63b592d3a7d08e51c0",
        ),
    ];
    for (user, pw, hex) in vectors {
        let resp = s().req("GET", "/").basic(user, pw).send().expect(200);
        assert_eq!(
            resp.json()["user"]["id"],
            json!(format!("basicauth:{hex}")),
            "{user}:{pw}\n{resp}"
        );
    }
}

#[test]
fn user_ids_are_stable_and_distinct() {
    let name = fresh_id("alice");
    let id = |pw: &str| {
        s().req("GET", "/")
            .basic(&name, pw)
            .send()
            .expect(200)
            .json()["user"]["id"]
            .clone()
    };
    let a = id("pw1");
    let text = a.as_str().unwrap();
    assert!(text.starts_with("basicauth:") && text.len() == 74, "{a}");
    assert!(
        text[10..]
            .chars()
            .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "{a}"
    );
    assert_eq!(id("pw1"), a);
    assert_ne!(id("pw2"), a);
    assert_ne!(id("pw1:x"), a);
    let other = s()
        .req("GET", "/")
        .basic(&fresh_id("bob"), "pw1")
        .send()
        .json()["user"]["id"]
        .clone();
    assert_ne!(other, a);
}

#[test]
fn a_password_with_colons_is_one_password() {
    let name = fresh_id("u");
    let owner = User::new(&name, "b:c");
    let bid = new_bucket(s(), &owner);
    s().req("GET", &format!("/buckets/{bid}"))
        .basic(&name, "b:c")
        .send()
        .expect(200);
    assert_403(
        &s().req("GET", &format!("/buckets/{bid}"))
            .basic(&name, "b")
            .send(),
    );
}

#[test]
fn malformed_credentials_are_anonymous() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    s().put(&format!("{records}/r"), &owner, json!({}))
        .expect(201);
    let headers = [
        "Bearer abc".to_string(),
        "Basic !!!not-base64!!!".to_string(),
        format!("Basic {}", b64("no-colon")),
        format!("Basic {}", b64(":password")),
        "Basic".to_string(),
        "".to_string(),
        format!("Digest {}", b64("user:pw")),
    ];
    for h in &headers {
        let root = s()
            .req("GET", "/")
            .header("Authorization", h)
            .send()
            .expect(200)
            .json();
        assert!(
            root.get("user").is_none(),
            "{h:?} must be anonymous: {root}"
        );
        assert_401(
            &s().req("GET", &format!("{records}/r"))
                .header("Authorization", h)
                .send(),
        );
        assert_401(
            &s().req("GET", "/buckets/default")
                .header("Authorization", h)
                .send(),
        );
    }
}

/// Section 5's table.
#[test]
fn unauthorized_forbidden_or_not_found() {
    let owner = User::fresh("owner");
    let stranger = User::fresh("stranger");
    let reader = User::fresh("reader");
    let (bid, records) = new_collection(s(), &owner);
    s().patch(
        &format!("/buckets/{bid}"),
        &owner,
        json!({"permissions": {"read": [s().userid(&reader)]}}),
    )
    .expect(200);
    s().put(&format!("{records}/r"), &owner, json!({}))
        .expect(201);
    let b = format!("/buckets/{bid}");
    let missing_bucket = format!("/buckets/{}", fresh_id("nob"));
    let cases = [
        // (path, anonymous, stranger, reader)
        (format!("{records}/r"), 401, 403, 200),
        (format!("{records}/missing"), 401, 403, 404),
        (records.clone(), 401, 403, 200),
        (format!("{b}/collections/c"), 401, 403, 200),
        (format!("{b}/collections/nope"), 401, 403, 404),
        (format!("{b}/collections/nope/records"), 401, 403, 404),
        (format!("{b}/collections/nope/records/r"), 401, 403, 404),
        (format!("{b}/groups/nope"), 401, 403, 404),
        (format!("{b}/groups"), 401, 403, 200),
        (b.clone(), 401, 403, 200),
        (missing_bucket.clone(), 401, 403, 403),
        (format!("{missing_bucket}/collections"), 401, 403, 403),
        (
            format!("{missing_bucket}/collections/c/records/r"),
            401,
            403,
            403,
        ),
    ];
    let mut table = Vec::new();
    for (path, anon, str_, rea) in cases {
        table.push(Case::new("GET", path.clone(), None, anon).errno(104));
        table.push(Case::new("GET", path.clone(), Some(&stranger), str_).errno(121));
        let mut c = Case::new("GET", path, Some(&reader), rea);
        if rea == 403 {
            c = c.errno(121);
        }
        table.push(c);
    }
    run_cases(s(), &table);

    // Exact bodies.
    assert_401(&s().req("GET", &format!("{records}/r")).send());
    assert_403(&s().get(&format!("{records}/r"), &stranger));
    assert_404(
        &s().get(&format!("{records}/missing"), &reader),
        "missing",
        "record",
    );
    assert_404(
        &s().get(&format!("{b}/collections/nope"), &reader),
        "nope",
        "collection",
    );
    assert_404(
        &s().get(&format!("{b}/groups/nope"), &reader),
        "nope",
        "group",
    );
    let resp = s().get(&format!("{b}/collections/nope/records"), &reader);
    assert_eq!(
        resp.json(),
        json!({"code": 404, "errno": 111, "error": "Not Found",
               "details": {"id": "nope", "resource_name": "collection"}}),
        "{resp}"
    );
}

#[test]
fn a_deleted_bucket_answers_403() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    s().delete(&format!("/buckets/{bid}"), &owner).expect(200);
    assert_403(&s().get(&format!("/buckets/{bid}"), &owner));
    assert_403(&s().get(&records, &owner));
    assert_403(&s().get(&format!("{records}/x"), &owner));
    assert_401(&s().req("GET", &format!("/buckets/{bid}")).send());
}

#[test]
fn writes_need_authentication_or_permission() {
    let owner = User::fresh("owner");
    let stranger = User::fresh("stranger");
    let (bid, records) = new_collection(s(), &owner);
    s().put(&format!("{records}/r"), &owner, json!({}))
        .expect(201);
    let writes = [
        ("PUT", format!("{records}/r")),
        ("PATCH", format!("{records}/r")),
        ("DELETE", format!("{records}/r")),
        ("POST", records.clone()),
        ("PUT", format!("/buckets/{bid}/collections/new")),
        ("PUT", format!("/buckets/{bid}/groups/new")),
        ("PATCH", format!("/buckets/{bid}")),
        ("DELETE", format!("/buckets/{bid}")),
    ];
    for (m, url) in &writes {
        let body = json!({"data": {"x": 1}});
        assert_401(&s().req(m, url).json(&body).send());
        assert_403(&s().req(m, url).user(&stranger).json(&body).send());
    }
    // Creating a bucket needs authentication only (bucket:create defaults
    // to system.Authenticated).
    assert_401(
        &s().req("PUT", &format!("/buckets/{}", fresh_id("b")))
            .json(&json!({}))
            .send(),
    );
    assert_401(&s().req("POST", "/buckets").json(&json!({})).send());
    s().put(&format!("/buckets/{}", fresh_id("b")), &stranger, json!({}))
        .expect(201);
    assert_eq!(
        s().get(&format!("{records}/r"), &owner)
            .data()
            .as_object()
            .unwrap()
            .len(),
        2
    );
}
