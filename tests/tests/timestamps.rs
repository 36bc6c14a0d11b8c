//! api-core section 6: timestamps, list timestamps, ETag / Last-Modified,
//! client-supplied `last_modified`; and Cairn's promise that timestamps
//! never go back when a bucket or collection is deleted and created again.

use cairn_tests::*;
use serde_json::json;

fn s() -> &'static Server {
    Server::shared()
}

#[test]
fn back_to_back_writes_get_strictly_increasing_timestamps() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let mut last = 0;
    for i in 0..20 {
        let resp = s()
            .put(
                &format!("{records}/r{i}"),
                &owner,
                json!({"data": {"i": i}}),
            )
            .expect(201);
        let t = lm(&resp.data());
        assert!(t > last, "write {i}: {t} after {last}");
        assert_ts_headers(&resp, t);
        last = t;
    }
    // Updates and deletes too, on the same list.
    for i in 0..5 {
        let t = lm(&s()
            .patch(
                &format!("{records}/r{i}"),
                &owner,
                json!({"data": {"u": 1}}),
            )
            .expect(200)
            .data());
        assert!(t > last);
        last = t;
        let t = lm(&s()
            .delete(&format!("{records}/r{}", 19 - i), &owner)
            .expect(200)
            .data());
        assert!(t > last);
        last = t;
    }
    // The list timestamp is the newest change, tombstones included.
    let list = s().get(&records, &owner).expect(200);
    assert_ts_headers(&list, last);
    assert_ts_headers(&s().head(&records, &owner).expect(200), last);
    // Same for the other kinds of lists.
    let mut last_c = 0;
    for i in 0..5 {
        let t = lm(&s()
            .put(
                &format!("/buckets/{bid}/collections/x{i}"),
                &owner,
                json!({}),
            )
            .expect(201)
            .data());
        assert!(t > last_c);
        last_c = t;
    }
    assert_eq!(
        s().get(&format!("/buckets/{bid}/collections"), &owner)
            .etag(),
        last_c
    );
    let mut last_g = 0;
    for i in 0..5 {
        let t = lm(&s()
            .put(&format!("/buckets/{bid}/groups/g{i}"), &owner, json!({}))
            .expect(201)
            .data());
        assert!(t > last_g);
        last_g = t;
    }
    let t = lm(&s()
        .delete(&format!("/buckets/{bid}/groups/g0"), &owner)
        .expect(200)
        .data());
    assert!(t > last_g);
    assert_eq!(s().get(&format!("/buckets/{bid}/groups"), &owner).etag(), t);
}

#[test]
fn object_get_sends_its_own_timestamp() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let created = s()
        .put(&format!("{records}/r"), &owner, json!({}))
        .expect(201);
    for _ in 0..3 {
        s().post(&records, &owner, json!({})).expect(201);
    }
    let resp = s().get(&format!("{records}/r"), &owner).expect(200);
    assert_ts_headers(&resp, lm(&created.data()));
    let resp = s().head(&format!("{records}/r"), &owner).expect(200);
    assert_ts_headers(&resp, lm(&created.data()));
    let coll = s()
        .get(&format!("/buckets/{bid}/collections/c"), &owner)
        .expect(200);
    assert_ts_headers(&coll, lm(&coll.data()));
}

#[test]
fn parents_are_not_bumped_by_children() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let bucket = s().get(&format!("/buckets/{bid}"), &owner).data();
    let coll = s()
        .get(&format!("/buckets/{bid}/collections/c"), &owner)
        .data();
    s().post(&records, &owner, json!({})).expect(201);
    s().put(&format!("/buckets/{bid}/collections/d"), &owner, json!({}))
        .expect(201);
    s().put(&format!("/buckets/{bid}/groups/g"), &owner, json!({}))
        .expect(201);
    assert_eq!(s().get(&format!("/buckets/{bid}"), &owner).data(), bucket);
    assert_eq!(
        s().get(&format!("/buckets/{bid}/collections/c"), &owner)
            .data(),
        coll
    );
    // ... but the collection list moved.
    assert!(
        s().get(&format!("/buckets/{bid}/collections"), &owner)
            .etag()
            > lm(&coll)
    );
}

#[test]
fn a_never_written_list_has_a_stable_current_timestamp() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    for list in [records.clone(), format!("/buckets/{bid}/groups")] {
        let before = now_ms();
        let first = s().get(&list, &owner).expect(200);
        let t = first.etag();
        assert!(
            t + 5_000 >= before && t <= now_ms() + 5_000,
            "{t} is not about now ({before})"
        );
        assert_ts_headers(&first, t);
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert_eq!(s().get(&list, &owner).etag(), t);
        assert_eq!(s().head(&list, &owner).etag(), t);
    }
    // The first write is later than the reported value.
    let t0 = s().get(&records, &owner).etag();
    let t1 = lm(&s().post(&records, &owner, json!({})).expect(201).data());
    assert!(t1 > t0, "{t1} <= {t0}");
}

#[test]
fn last_modified_header_is_an_imf_fixdate() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = s().post(&records, &owner, json!({})).expect(201);
    let h = resp.header("Last-Modified").unwrap();
    // e.g. "Thu, 26 Nov 2026 11:03:31 GMT"
    let parts: Vec<&str> = h.split(' ').collect();
    assert_eq!(parts.len(), 6, "{h}");
    assert!(
        ["Mon,", "Tue,", "Wed,", "Thu,", "Fri,", "Sat,", "Sun,"].contains(&parts[0]),
        "{h}"
    );
    assert_eq!(parts[1].len(), 2, "{h}");
    assert_eq!(parts[4].len(), 8, "{h}");
    assert_eq!(parts[5], "GMT");
    assert_ts_headers(&resp, lm(&resp.data()));
    let etag = resp.header("ETag").unwrap();
    assert_eq!(etag, format!("\"{}\"", lm(&resp.data())));
}

#[test]
fn client_supplied_last_modified() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r");
    let created = lm(&s()
        .put(&url, &owner, json!({"data": {"v": 0}}))
        .expect(201)
        .data());

    // Not an integer: ignored.
    let t = lm(&s()
        .patch(&url, &owner, json!({"data": {"last_modified": "1234"}}))
        .expect(200)
        .data());
    assert!(t > created);
    // On update, <= stored: ignored, a new one is assigned.
    let t2 = lm(&s()
        .put(&url, &owner, json!({"data": {"last_modified": t}}))
        .expect(200)
        .data());
    assert!(t2 > t);
    let t3 = lm(&s()
        .patch(&url, &owner, json!({"data": {"last_modified": 5}}))
        .expect(200)
        .data());
    assert!(t3 > t2);
    // On update, greater: used as given.
    let wanted = t3 + 1000;
    let resp = s()
        .patch(&url, &owner, json!({"data": {"last_modified": wanted}}))
        .expect(200);
    assert_eq!(lm(&resp.data()), wanted);
    assert_ts_headers(&resp, wanted);
    // The list timestamp jumped there; later writes continue after it.
    assert_eq!(s().get(&records, &owner).etag(), wanted);
    let next = lm(&s().post(&records, &owner, json!({})).expect(201).data());
    assert!(next > wanted, "{next} <= {wanted}");
    // Equal to the list timestamp on create: bumped.
    let resp = s()
        .post(&records, &owner, json!({"data": {"last_modified": next}}))
        .expect(201);
    assert!(lm(&resp.data()) > next, "{resp}");
}

/// Cairn decision (docs/kinto-differences.md; the reference stores it as
/// given, api-core section 22 item 6): a supplied `last_modified` at or
/// below the list timestamp on create is replaced, so `_since` pollers see
/// the record.
#[test]
fn a_past_last_modified_on_create_is_replaced() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let before = lm(&s().post(&records, &owner, json!({})).expect(201).data());
    let etag = s().get(&records, &owner).etag();
    for (i, past) in [1000, before - 1, before].into_iter().enumerate() {
        let resp = s()
            .put(
                &format!("{records}/p{i}"),
                &owner,
                json!({"data": {"last_modified": past}}),
            )
            .expect(201);
        let t = lm(&resp.data());
        assert!(
            t > before,
            "created at {t}, not after the list timestamp {before}"
        );
        assert_ts_headers(&resp, t);
    }
    let seen = ids(&s().get(&format!("{records}?_since={etag}"), &owner).json());
    assert_eq!(seen, vec!["p2", "p1", "p0"]);
}

#[test]
fn future_last_modified_on_create_moves_the_list() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let future = now_ms() + 3_600_000;
    let resp = s()
        .post(&records, &owner, json!({"data": {"last_modified": future}}))
        .expect(201);
    assert_eq!(lm(&resp.data()), future);
    assert_eq!(s().get(&records, &owner).etag(), future);
    let after = lm(&s().post(&records, &owner, json!({})).expect(201).data());
    assert_eq!(after, future + 1);
}

#[test]
fn delete_with_last_modified_parameter() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let t = lm(&s()
        .put(&format!("{records}/a"), &owner, json!({}))
        .expect(201)
        .data());
    s().put(&format!("{records}/b"), &owner, json!({}))
        .expect(201);
    let wanted = now_ms() + 60_000;
    let resp = s()
        .delete(&format!("{records}/a?last_modified={wanted}"), &owner)
        .expect(200);
    assert_eq!(lm(&resp.data()), wanted);
    assert_ts_headers(&resp, wanted);
    // Not greater than the record's own timestamp: ignored.
    let tb = lm(&s().get(&format!("{records}/b"), &owner).data());
    let resp = s()
        .delete(&format!("{records}/b?last_modified={t}"), &owner)
        .expect(200);
    assert!(lm(&resp.data()) > tb && lm(&resp.data()) != t, "{resp}");
}

/// Cairn's promise (issue 3): recreating a deleted collection or bucket
/// never hands out timestamps at or below what clients have already seen.
#[test]
fn timestamps_never_go_back_after_delete_and_recreate() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    // Push the records list into the future so a naive "now" would be lower.
    let future = now_ms() + 120_000;
    s().post(&records, &owner, json!({"data": {"last_modified": future}}))
        .expect(201);
    let seen = s().get(&records, &owner).etag();
    assert_eq!(seen, future);

    s().delete(&format!("/buckets/{bid}/collections/c"), &owner)
        .expect(200);
    s().put(&format!("/buckets/{bid}/collections/c"), &owner, json!({}))
        .expect(201);
    let empty = s()
        .get(&format!("{records}?_since={seen}"), &owner)
        .expect(200);
    assert_eq!(empty.json(), json!({"data": []}));
    assert!(
        empty.etag() >= seen,
        "list timestamp went back: {} < {seen}",
        empty.etag()
    );
    let t = lm(&s().post(&records, &owner, json!({})).expect(201).data());
    assert!(t > seen, "record after re-creation got {t} <= {seen}");
    // A client polling with its old ETag sees the new record.
    assert_eq!(
        s().get(&format!("{records}?_since={seen}"), &owner).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // Same through a bucket deletion.
    let seen = s().get(&records, &owner).etag();
    let seen_c = s()
        .get(&format!("/buckets/{bid}/collections"), &owner)
        .etag();
    s().delete(&format!("/buckets/{bid}"), &owner).expect(200);
    s().put(&format!("/buckets/{bid}"), &owner, json!({}))
        .expect(201);
    let c = lm(&s()
        .put(&format!("/buckets/{bid}/collections/c"), &owner, json!({}))
        .expect(201)
        .data());
    assert!(c > seen_c, "collection re-created at {c} <= {seen_c}");
    let t = lm(&s().post(&records, &owner, json!({})).expect(201).data());
    assert!(
        t > seen,
        "record after bucket re-creation got {t} <= {seen}"
    );
    assert!(s().get(&records, &owner).etag() > seen);
}
