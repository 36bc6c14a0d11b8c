//! The personal `default` bucket: api-core section 1 and api-around
//! section 2 (id derivation, implicit creation, aliasing, anonymous 401).

use cairn_tests::*;
use serde_json::json;

fn s() -> &'static Server {
    Server::shared()
}

#[track_caller]
fn assert_uuid_shape(id: &str) {
    let lens: Vec<usize> = id.split('-').map(str::len).collect();
    assert_eq!(lens, vec![8, 4, 4, 4, 12], "not UUID-shaped: {id}");
    assert!(
        id.chars()
            .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
        "not lowercase hex: {id}"
    );
}

/// api-around section 2's vector (`default_bucket_hmac_secret =
/// bucketsalt`, `userid_hmac_secret = s3cr3t`, as the harness configures).
#[test]
fn personal_bucket_id_matches_the_reference_derivation() {
    if s().is_external() {
        eprintln!("skipped: needs a server started with the harness's secrets");
        return;
    }
    let alice = User::new("alice", "wonderland");
    let resp = s().get("/buckets/default", &alice).expect(200);
    assert_eq!(
        resp.data()["id"],
        "1e3b3605-03da-1c18-d13e-c9f48b46049a",
        "{resp}"
    );
    assert_eq!(
        s().get("/", &alice).json()["user"]["bucket"],
        "1e3b3605-03da-1c18-d13e-c9f48b46049a"
    );
}

#[test]
fn implicit_creation_of_bucket_and_collection() {
    let user = User::fresh("user");
    let uid = s().userid(&user);
    let resp = s()
        .post(
            "/buckets/default/collections/tasks/records",
            &user,
            json!({"data": {"a": 1}}),
        )
        .expect(201);
    assert_perms(&resp, json!({"write": [uid]}));
    let record = resp.data();

    let bucket = s().get("/buckets/default", &user).expect(200);
    let bid = bucket.data()["id"].as_str().unwrap().to_string();
    assert_uuid_shape(&bid);
    assert_eq!(
        bucket.data(),
        json!({"id": bid, "last_modified": lm(&bucket.data())})
    );
    assert_eq!(bucket.json()["permissions"], json!({"write": [uid]}));
    assert_ts_headers(&bucket, lm(&bucket.data()));
    assert_eq!(s().get("/", &user).json()["user"]["bucket"], json!(bid));

    // Same objects under the real id.
    assert_eq!(
        s().get(&format!("/buckets/{bid}"), &user)
            .expect(200)
            .json(),
        bucket.json()
    );
    let coll = s()
        .get(&format!("/buckets/{bid}/collections/tasks"), &user)
        .expect(200);
    assert_eq!(coll.json()["permissions"], json!({"write": [uid]}));
    assert_eq!(
        s().get(&format!("/buckets/{bid}/collections/tasks/records"), &user)
            .data(),
        json!([record])
    );
    assert_eq!(
        s().get("/buckets/default/collections/tasks/records", &user)
            .data(),
        json!([record])
    );

    // Stable; another user has another one.
    assert_eq!(s().get("/buckets/default", &user).data()["id"], json!(bid));
    let other = User::fresh("other");
    let theirs = s().get("/buckets/default", &other).expect(200).data()["id"].clone();
    assert_ne!(theirs, json!(bid));
    assert_ne!(
        s().get("/buckets/default", &User::new(&user.name, "other-pw"))
            .data()["id"],
        json!(bid)
    );
    // ... who cannot read this one.
    assert_403(&s().get(&format!("/buckets/{bid}"), &other));
}

#[test]
fn reading_under_a_collection_creates_it_but_groups_are_not_created() {
    let user = User::fresh("user");
    let resp = s()
        .get("/buckets/default/collections/made-by-get/records", &user)
        .expect(200);
    assert_eq!(resp.json(), json!({"data": []}));
    let list = ids(&s()
        .get("/buckets/default/collections", &user)
        .expect(200)
        .json());
    assert_eq!(list, vec!["made-by-get"]);
    s().get("/buckets/default/collections/made-by-get", &user)
        .expect(200);
    assert_404(&s().get("/buckets/default/groups/g", &user), "g", "group");
    assert_eq!(
        s().get("/buckets/default/groups", &user).expect(200).json(),
        json!({"data": []})
    );
    // Groups can be created explicitly.
    s().put(
        "/buckets/default/groups/g",
        &user,
        json!({"data": {"members": []}}),
    )
    .expect(201);
}

#[test]
fn invalid_collection_id_under_default() {
    let user = User::fresh("user");
    let resp = s().get("/buckets/default/collections/a.b/records", &user);
    assert_eq!(
        (resp.status, resp.json()),
        (
            400,
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "path: Invalid collection id",
                   "details": [{"location": "path", "name": null, "description": "Invalid collection id"}]})
        ),
        "{resp}"
    );
}

#[test]
fn deleting_the_personal_bucket_then_using_it_again() {
    let user = User::fresh("user");
    s().post("/buckets/default/collections/c/records", &user, json!({}))
        .expect(201);
    let bid = s().get("/buckets/default", &user).data()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = s().delete("/buckets/default", &user).expect(200);
    assert_eq!(
        resp.json(),
        json!({"data": {"id": bid, "last_modified": lm(&resp.data()), "deleted": true}})
    );
    // Recreated empty, same id.
    assert_eq!(
        s().get("/buckets/default/collections", &user)
            .expect(200)
            .json(),
        json!({"data": []})
    );
    assert_eq!(s().get("/buckets/default", &user).data()["id"], json!(bid));
}

#[test]
fn anonymous_requests_under_default_are_401() {
    let anon = |m: &str, p: &str| {
        let r = s().req(m, p);
        if matches!(m, "POST" | "PUT" | "PATCH") {
            r.json(&json!({"data": {}})).send()
        } else {
            r.send()
        }
    };
    for (m, p) in [
        ("GET", "/buckets/default"),
        ("PUT", "/buckets/default"),
        ("DELETE", "/buckets/default"),
        ("GET", "/buckets/default/collections"),
        ("GET", "/buckets/default/collections/tasks/records"),
        ("POST", "/buckets/default/collections/tasks/records"),
        ("PUT", "/buckets/default/collections/tasks/records/x"),
        ("PATCH", "/buckets/default/collections/tasks"),
        ("GET", "/buckets/default/groups/g"),
    ] {
        assert_401(&anon(m, p));
    }
}

#[test]
fn a_record_in_the_personal_bucket_can_be_shared_by_its_real_url() {
    let user = User::fresh("user");
    let friend = User::fresh("friend");
    let payload = json!({"data": {"t": "shared"}, "permissions": {"read": [s().userid(&friend)]}});
    let rec = s()
        .post("/buckets/default/collections/tasks/records", &user, payload)
        .expect(201)
        .data();
    let bid = s().get("/buckets/default", &user).data()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let url = format!(
        "/buckets/{bid}/collections/tasks/records/{}",
        rec["id"].as_str().unwrap()
    );
    assert_eq!(
        s().get(&url, &friend).expect(200).json(),
        json!({"data": rec, "permissions": {}})
    );
    // For the friend, `default` is their own bucket.
    let resp = s().get(
        &format!(
            "/buckets/default/collections/tasks/records/{}",
            rec["id"].as_str().unwrap()
        ),
        &friend,
    );
    assert_404(&resp, rec["id"].as_str().unwrap(), "record");
}

/// A bucket literally named `default` can be created, but the URL
/// `/buckets/default` always means the personal bucket.
#[test]
fn a_bucket_named_default_is_unreachable_by_that_name() {
    if s().is_external() {
        eprintln!("skipped: the id `default` is global and may exist on an external server");
        return;
    }
    let user = User::fresh("user");
    let resp = s()
        .post(
            "/buckets",
            &user,
            json!({"data": {"id": "default", "mark": 1}}),
        )
        .expect(201);
    assert_eq!(resp.data()["id"], "default");
    let personal = s().get("/buckets/default", &user).expect(200).data();
    assert_ne!(personal["id"], "default");
    assert!(personal.get("mark").is_none());
}
