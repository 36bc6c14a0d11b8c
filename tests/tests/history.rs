//! History (issue 5) over HTTP: `/buckets/{bid}/history` entries read from
//! the event log, their shape, order, filters, pagination and permissions,
//! and the purge of a deleted bucket's history. Runs against
//! `Server::with_plugins()`, or the reference with `KINTO_URL`.

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::with_plugins()
}

fn field(body: &Value, name: &str) -> Vec<Value> {
    body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {body}"))
        .iter()
        .map(|e| e[name].clone())
        .collect()
}

/// A bucket with a collection and one record created, updated, deleted.
fn story(s: &Server, owner: &User) -> String {
    let bid = new_bucket(s, owner);
    s.put(&format!("/buckets/{bid}/collections/c"), owner, json!({}))
        .expect(201);
    let r = format!("/buckets/{bid}/collections/c/records/r1");
    s.put(&r, owner, json!({"data": {"x": 1}})).expect(201);
    s.patch(&r, owner, json!({"data": {"x": 2}})).expect(200);
    s.delete(&r, owner).expect(200);
    bid
}

#[test]
fn entries_shape_and_order() {
    let s = s();
    let alice = User::fresh("alice");
    let alice_id = s.userid(&alice);
    let bid = story(s, &alice);
    let resp = s
        .get(&format!("/buckets/{bid}/history"), &alice)
        .expect(200);
    let body = resp.json();
    assert_eq!(
        field(&body, "action"),
        vec![
            json!("delete"),
            json!("update"),
            json!("create"),
            json!("create"),
            json!("create")
        ],
        "{resp}"
    );
    assert_eq!(
        field(&body, "resource_name"),
        vec![
            json!("record"),
            json!("record"),
            json!("record"),
            json!("collection"),
            json!("bucket")
        ]
    );
    let lm: Vec<u64> = body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["last_modified"].as_u64().unwrap())
        .collect();
    assert!(lm.windows(2).all(|w| w[0] > w[1]), "newest first: {lm:?}");
    assert_eq!(resp.etag(), lm[0]);

    let update = &body["data"][1];
    assert_eq!(
        update["uri"],
        json!(format!("/buckets/{bid}/collections/c/records/r1"))
    );
    assert_eq!(update["user_id"], json!(alice_id));
    assert_eq!(update["collection_id"], json!("c"));
    assert_eq!(update["record_id"], json!("r1"));
    assert!(
        update.get("bucket_id").is_none(),
        "bucket_id only on bucket entries"
    );
    assert_eq!(update["target"]["data"]["x"], json!(2));
    assert_eq!(update["target"]["permissions"]["write"], json!([alice_id]));
    assert!(update["date"].as_str().unwrap().ends_with("+00:00"));
    assert!(update["id"].as_str().is_some());
    let delete = &body["data"][0];
    assert_eq!(delete["target"]["permissions"], json!({}));
    assert_eq!(delete["target"]["data"]["deleted"], json!(true));
    let bucket = &body["data"][4];
    assert_eq!(bucket["bucket_id"], json!(bid));

    // Filters, numeric ids compared as strings, _since, pagination.
    let only = s
        .get(
            &format!("/buckets/{bid}/history?resource_name=collection"),
            &alice,
        )
        .expect(200);
    assert_eq!(field(&only.json(), "collection_id"), vec![json!("c")]);
    let since = s
        .get(&format!("/buckets/{bid}/history?_since={}", lm[2]), &alice)
        .expect(200);
    assert_eq!(
        field(&since.json(), "action"),
        vec![json!("delete"), json!("update")]
    );
    let page = s
        .get(
            &format!("/buckets/{bid}/history?_limit=2&_sort=last_modified"),
            &alice,
        )
        .expect(200);
    assert_eq!(
        field(&page.json(), "resource_name"),
        vec![json!("bucket"), json!("collection")]
    );
    let next = page.header("Next-Page").expect("Next-Page").to_string();
    let path = next.split("/v1").nth(1).unwrap().to_string();
    let page2 = s.req("GET", &path).user(&alice).send().expect(200);
    assert_eq!(
        field(&page2.json(), "action"),
        vec![json!("create"), json!("update")]
    );
}

#[test]
fn readers_see_what_they_could_read() {
    let s = s();
    let alice = User::fresh("alice");
    let bob = User::fresh("bob");
    let bob_id = s.userid(&bob);
    let bid = new_bucket(s, &alice);
    s.put(&format!("/buckets/{bid}/collections/c"), &alice, json!({}))
        .expect(201);
    s.put(
        &format!("/buckets/{bid}/collections/c/records/shared"),
        &alice,
        json!({"data": {}, "permissions": {"read": [bob_id]}}),
    )
    .expect(201);
    s.put(
        &format!("/buckets/{bid}/collections/c/records/private"),
        &alice,
        json!({"data": {}}),
    )
    .expect(201);
    let seen = s.get(&format!("/buckets/{bid}/history"), &bob).expect(200);
    assert_eq!(
        field(&seen.json(), "record_id"),
        vec![json!("shared")],
        "{seen}"
    );
    // Someone who could read nothing: 403; anonymous: 401.
    assert_403(&s.get(&format!("/buckets/{bid}/history"), &User::fresh("eve")));
    assert_401(&s.req("GET", &format!("/buckets/{bid}/history")).send());
    assert_403(&s.get(&format!("/buckets/{}/history", fresh_id("none")), &bob));
}

#[test]
fn deleting_a_bucket_forgets_its_history() {
    let s = s();
    let alice = User::fresh("alice");
    let bid = story(s, &alice);
    s.delete(&format!("/buckets/{bid}"), &alice).expect(200);
    s.put(&format!("/buckets/{bid}"), &alice, json!({}))
        .expect(201);
    let resp = s
        .get(&format!("/buckets/{bid}/history"), &alice)
        .expect(200);
    assert_eq!(
        field(&resp.json(), "action"),
        vec![json!("create")],
        "{resp}"
    );
    assert_eq!(field(&resp.json(), "resource_name"), vec![json!("bucket")]);
}

#[test]
fn default_bucket_creations_are_in_history() {
    let s = s();
    let alice = User::fresh("alice");
    s.put(
        "/buckets/default/collections/tasks/records/t1",
        &alice,
        json!({"data": {}}),
    )
    .expect(201);
    let bid = s.get("/buckets/default", &alice).expect(200).data()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let resp = s
        .get(
            &format!("/buckets/{bid}/history?_sort=last_modified"),
            &alice,
        )
        .expect(200);
    assert_eq!(
        field(&resp.json(), "resource_name"),
        vec![json!("bucket"), json!("collection"), json!("record")],
        "{resp}"
    );
}
