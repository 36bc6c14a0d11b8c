//! api-core section 15: what deleting a bucket, collection, group or record
//! also removes, and the tombstone it leaves in its parent's list.

use cairn_tests::*;
use serde_json::json;

fn s() -> &'static Server {
    Server::shared()
}

#[test]
fn deleting_a_collection_removes_its_records_and_their_tombstones() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let reader = User::fresh("reader");
    let rid = s().userid(&reader);
    s().put(
        &format!("{records}/a"),
        &owner,
        json!({"data": {"v": 1}, "permissions": {"read": [rid]}}),
    )
    .expect(201);
    s().put(&format!("{records}/b"), &owner, json!({}))
        .expect(201);
    s().delete(&format!("{records}/b"), &owner).expect(200);
    let coll = format!("/buckets/{bid}/collections/c");
    let gone = s().delete(&coll, &owner).expect(200).data();
    assert_eq!(
        gone,
        json!({"id": "c", "last_modified": lm(&gone), "deleted": true})
    );

    // The collection's tombstone is in the bucket's collection list.
    let list = s()
        .get(&format!("/buckets/{bid}/collections?_since=0"), &owner)
        .expect(200);
    assert_eq!(
        list.data(),
        json!([{"deleted": true, "id": "c", "last_modified": lm(&gone)}])
    );
    assert_eq!(
        s().get(&format!("/buckets/{bid}/collections"), &owner)
            .data(),
        json!([])
    );

    // Its records are gone: the records list is a 404 of the collection,
    // and after re-creation nothing comes back, tombstones included.
    let resp = s().get(&records, &owner);
    assert_eq!(resp.status, 404, "{resp}");
    assert_eq!(resp.json()["errno"], 111);
    s().put(&coll, &owner, json!({})).expect(201);
    assert_eq!(
        s().get(&format!("{records}?_since=0"), &owner)
            .expect(200)
            .data(),
        json!([])
    );
    assert_404(&s().get(&format!("{records}/a"), &owner), "a", "record");
    // The record's ACL went with it.
    assert_403(&s().get(&format!("{records}/a"), &reader));
    let recreated = s()
        .put(&format!("{records}/a"), &owner, json!({}))
        .expect(201);
    assert_perms(&recreated, json!({"write": [s().userid(&owner)]}));
    assert_403(&s().get(&format!("{records}/a"), &reader));
}

#[test]
fn deleting_a_bucket_removes_everything_below() {
    let owner = User::fresh("owner");
    let member = User::fresh("member");
    let mid = s().userid(&member);
    let (bid, records) = new_collection(s(), &owner);
    let b = format!("/buckets/{bid}");
    s().put(
        &format!("{b}/groups/g"),
        &owner,
        json!({"data": {"members": [mid]}}),
    )
    .expect(201);
    s().put(
        &format!("{records}/r"),
        &owner,
        json!({"permissions": {"read": [format!("{b}/groups/g")]}}),
    )
    .expect(201);
    s().put(&format!("{records}/gone"), &owner, json!({}))
        .expect(201);
    s().delete(&format!("{records}/gone"), &owner).expect(200);
    s().put(&format!("{b}/collections/c2"), &owner, json!({}))
        .expect(201);
    s().delete(&format!("{b}/collections/c2"), &owner)
        .expect(200);
    s().get(&format!("{records}/r"), &member).expect(200);
    assert!(s().get("/", &member).json()["user"]["principals"]
        .as_array()
        .unwrap()
        .contains(&json!(format!("{b}/groups/g"))));

    let gone = s().delete(&b, &owner).expect(200).data();
    assert_eq!(
        gone,
        json!({"id": bid, "last_modified": lm(&gone), "deleted": true})
    );
    // The member lost the group principal.
    assert!(!s().get("/", &member).json()["user"]["principals"]
        .as_array()
        .unwrap()
        .contains(&json!(format!("{b}/groups/g"))));
    assert_403(&s().get(&format!("{records}/r"), &member));
    // (The bucket's own tombstone is in the root list, which nobody reads
    // in full: 4.6 shows it to no one.)

    // Re-created: empty, no tombstones of the old content.
    s().put(&b, &owner, json!({})).expect(201);
    assert_eq!(
        s().get(&format!("{b}/collections?_since=0"), &owner).data(),
        json!([])
    );
    assert_eq!(
        s().get(&format!("{b}/groups?_since=0"), &owner).data(),
        json!([])
    );
    s().put(&format!("{b}/collections/c"), &owner, json!({}))
        .expect(201);
    assert_eq!(
        s().get(&format!("{records}?_since=0"), &owner).data(),
        json!([])
    );
    assert_404(&s().get(&format!("{b}/groups/g"), &owner), "g", "group");
}

#[test]
fn deleting_a_group_keeps_acl_entries_naming_it() {
    let owner = User::fresh("owner");
    let member = User::fresh("member");
    let (bid, records) = new_collection(s(), &owner);
    let g = format!("/buckets/{bid}/groups/g");
    s().put(
        &g,
        &owner,
        json!({"data": {"members": [s().userid(&member)]}}),
    )
    .expect(201);
    s().put(
        &format!("{records}/r"),
        &owner,
        json!({"permissions": {"read": [g.clone()]}}),
    )
    .expect(201);
    s().get(&format!("{records}/r"), &member).expect(200);
    let t = lm(&s().delete(&g, &owner).expect(200).data());
    assert_403(&s().get(&format!("{records}/r"), &member));
    let acl = s().get(&format!("{records}/r"), &owner).json()["permissions"].clone();
    assert_eq!(acl["read"], json!([g]), "{acl}");
    let list = s()
        .get(&format!("/buckets/{bid}/groups?_since=0"), &owner)
        .expect(200);
    assert_eq!(
        list.data(),
        json!([{"deleted": true, "id": "g", "last_modified": t}])
    );
}

#[test]
fn tombstones_of_collections_are_only_for_list_readers() {
    let owner = User::fresh("owner");
    let reader = User::fresh("reader");
    let coll_reader = User::fresh("creader");
    let bid = new_bucket(s(), &owner);
    s().patch(
        &format!("/buckets/{bid}"),
        &owner,
        json!({"permissions": {"read": [s().userid(&reader)]}}),
    )
    .expect(200);
    s().put(
        &format!("/buckets/{bid}/collections/shared"),
        &owner,
        json!({"permissions": {"read": [s().userid(&coll_reader)]}}),
    )
    .expect(201);
    s().put(
        &format!("/buckets/{bid}/collections/other"),
        &owner,
        json!({"permissions": {"read": [s().userid(&coll_reader)]}}),
    )
    .expect(201);
    let t = lm(&s()
        .delete(&format!("/buckets/{bid}/collections/shared"), &owner)
        .expect(200)
        .data());
    let list = s()
        .get(&format!("/buckets/{bid}/collections?_since=0"), &reader)
        .expect(200)
        .data();
    assert!(list
        .as_array()
        .unwrap()
        .contains(&json!({"deleted": true, "id": "shared", "last_modified": t})));
    let list = s()
        .get(
            &format!("/buckets/{bid}/collections?_since=0"),
            &coll_reader,
        )
        .expect(200)
        .data();
    assert_eq!(ids(&json!({"data": list})), vec!["other"]);
}
