//! api-core section 8: `_since`, `_before`, `_to`, tombstones, the sync
//! loop with `If-None-Match`; section 4.6's tombstones-and-shares rule; and
//! Cairn's promise that a client polling `?_since=<last ETag>` while others
//! write sees every change exactly once.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

fn tomb(id: &str, t: u64) -> Value {
    json!({"deleted": true, "id": id, "last_modified": t})
}

struct Fixture {
    owner: User,
    records: String,
    /// Timestamps: r1..r4 created at t[0..4], r2 updated at t[4], r3
    /// deleted at t[5].
    t: Vec<u64>,
    r1: Value,
    r2: Value,
    r4: Value,
}

fn fixture() -> Fixture {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let mut t = Vec::new();
    let mut objs = BTreeMap::new();
    for (i, n) in [(1, 1), (2, 2), (3, 1), (4, 2)] {
        let d = s()
            .put(
                &format!("{records}/r{i}"),
                &owner,
                json!({"data": {"n": n}}),
            )
            .expect(201)
            .data();
        t.push(lm(&d));
        objs.insert(i, d);
    }
    let r2 = s()
        .patch(
            &format!("{records}/r2"),
            &owner,
            json!({"data": {"u": true}}),
        )
        .expect(200)
        .data();
    t.push(lm(&r2));
    t.push(lm(&s()
        .delete(&format!("{records}/r3"), &owner)
        .expect(200)
        .data()));
    Fixture {
        owner,
        records,
        t,
        r1: objs[&1].clone(),
        r2,
        r4: objs[&4].clone(),
    }
}

impl Fixture {
    fn list(&self, query: &str) -> Value {
        s().get(&format!("{}?{query}", self.records), &self.owner)
            .expect(200)
            .json()["data"]
            .clone()
    }
}

#[test]
fn since_before_and_tombstones() {
    let f = fixture();
    let t = &f.t;
    let r3 = tomb("r3", t[5]);
    assert_eq!(f.list(&format!("_since={}", t[0])), json!([r3, f.r2, f.r4]));
    assert_eq!(
        f.list(&format!("_since=%22{}%22", t[0])),
        json!([r3, f.r2, f.r4]),
        "quoted value"
    );
    assert_eq!(f.list(&format!("_before={}", t[4])), json!([f.r4, f.r1]));
    assert_eq!(
        f.list(&format!("_since={}&_before={}", t[0], t[5])),
        json!([f.r2, f.r4])
    );
    assert_eq!(f.list(&format!("_since={}", t[5])), json!([]));
    assert_eq!(f.list("_since=0"), json!([r3, f.r2, f.r4, f.r1]));
    // Without a filter on last_modified: no tombstones, even asked for.
    assert_eq!(f.list(""), json!([f.r2, f.r4, f.r1]));
    assert_eq!(f.list("deleted=true"), json!([]));
    // Any last_modified filter brings them.
    assert_eq!(f.list(&format!("min_last_modified={}", t[5])), json!([r3]));
    assert_eq!(f.list(&format!("gt_last_modified={}", t[4])), json!([r3]));
    assert_eq!(f.list(&format!("last_modified={}", t[5])), json!([r3]));
    // Other filters apply to tombstones (which only have id,
    // last_modified, deleted).
    assert_eq!(f.list("_since=0&n=1"), json!([f.r1]));
    assert_eq!(f.list("_since=0&deleted=true"), json!([r3]));
    // Counts never include tombstones.
    let head = s()
        .head(&format!("{}?_since=0", f.records), &f.owner)
        .expect(200);
    assert_eq!(head.header("Total-Objects"), Some("3"));
    // The list's ETag is the tombstone's.
    assert_eq!(
        s().get(&format!("{}?_since=0", f.records), &f.owner).etag(),
        t[5]
    );
}

#[test]
fn each_object_appears_once_in_its_latest_state() {
    let f = fixture();
    let url = format!("{}/r1", f.records);
    s().patch(&url, &f.owner, json!({"data": {"x": 1}}))
        .expect(200);
    let gone = lm(&s().delete(&url, &f.owner).expect(200).data());
    let list = f.list(&format!("_since={}", f.t[5]));
    assert_eq!(list, json!([tomb("r1", gone)]));
    // Re-creating replaces the tombstone.
    let back = s()
        .put(&url, &f.owner, json!({"data": {"again": true}}))
        .expect(201)
        .data();
    assert_eq!(f.list(&format!("_since={}", f.t[5])), json!([back]));
    assert!(lm(&back) > gone);
}

#[test]
fn to_is_before_with_a_deprecation_alert() {
    let f = fixture();
    let resp = s()
        .get(&format!("{}?_to={}", f.records, f.t[4]), &f.owner)
        .expect(200);
    assert_eq!(resp.data(), json!([f.r4, f.r1]));
    let alert: Value =
        serde_json::from_str(resp.header("Alert").expect("Alert header")).expect("Alert is JSON");
    assert_eq!(alert["code"], "soft-eol", "{alert}");
    assert_eq!(
        alert["message"], "_to is now deprecated, you should use _before instead",
        "{alert}"
    );
    assert!(alert["url"].is_string(), "{alert}");
    assert!(s()
        .get(&format!("{}?_before={}", f.records, f.t[4]), &f.owner)
        .header("Alert")
        .is_none());
}

#[test]
fn timestamp_parameters_are_validated() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let err = |name: &str, d: &str, msg: &str| {
        json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": msg,
               "details": [{"location": "querystring", "name": name, "description": d}]})
    };
    for p in ["_since", "_before", "_to"] {
        let resp = s().get(&format!("{records}?{p}=-1"), &owner);
        let d = "-1 is less than minimum value 0";
        assert_eq!(
            (resp.status, resp.json()),
            (400, err(p, d, &format!("{p} in querystring: {d}"))),
            "{resp}"
        );
        let resp = s().get(&format!("{records}?{p}=abc"), &owner);
        let d = "\"abc\" is not a number";
        assert_eq!(
            (resp.status, resp.json()),
            (400, err(p, d, &format!("{p} in querystring: {d}"))),
            "{resp}"
        );
        let resp = s().get(&format!("{records}?{p}=999999999999999"), &owner);
        let d = format!("Invalid value for {p}");
        assert_eq!((resp.status, resp.json()), (400, err(p, &d, &d)), "{resp}");
        // Within a day from now is fine.
        s().get(&format!("{records}?{p}={}", now_ms() + 3_600_000), &owner)
            .expect(200);
    }
}

#[test]
fn sync_loop_with_if_none_match() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let first = s()
        .post(&records, &owner, json!({"data": {"a": 1}}))
        .expect(201)
        .data();
    let resp = s().get(&format!("{records}?_since=0"), &owner).expect(200);
    let etag = resp.header("ETag").unwrap().to_string();
    assert_eq!(resp.data(), json!([first]));
    let since = resp.etag();
    // Nothing changed: [] without, 304 with If-None-Match.
    assert_eq!(
        s().get(&format!("{records}?_since={since}"), &owner).data(),
        json!([])
    );
    let resp = s()
        .req("GET", &format!("{records}?_since={since}"))
        .user(&owner)
        .header("If-None-Match", &etag)
        .send();
    assert_eq!(resp.status, 304, "{resp}");
    assert!(resp.body.is_empty());
    assert_ts_headers(&resp, since);
    // A change: 200 with just that change, and a new ETag.
    let second = s()
        .post(&records, &owner, json!({"data": {"a": 2}}))
        .expect(201)
        .data();
    let resp = s()
        .req("GET", &format!("{records}?_since={since}"))
        .user(&owner)
        .header("If-None-Match", &etag)
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    assert_eq!(resp.data(), json!([second]));
    assert_eq!(resp.etag(), lm(&second));
}

/// 4.6: deleting an object deletes its ACL; a user who could read it only
/// through that ACL does not see the tombstone, and loses the list when it
/// was the last object shared with them. Collection readers see it.
#[test]
fn tombstones_are_not_shown_through_a_deleted_acl() {
    let owner = User::fresh("owner");
    let friend = User::fresh("friend");
    let reader = User::fresh("reader");
    let (bid, records) = new_collection(s(), &owner);
    let fid = s().userid(&friend);
    s().patch(
        &format!("/buckets/{bid}/collections/c"),
        &owner,
        json!({"permissions": {"read": [s().userid(&reader)]}}),
    )
    .expect(200);
    let a = s()
        .put(
            &format!("{records}/a"),
            &owner,
            json!({"permissions": {"read": [fid.clone()]}}),
        )
        .expect(201)
        .data();
    s().put(
        &format!("{records}/b"),
        &owner,
        json!({"permissions": {"read": [fid]}}),
    )
    .expect(201);
    let gone = lm(&s()
        .delete(&format!("{records}/b"), &owner)
        .expect(200)
        .data());
    assert_eq!(
        s().get(&format!("{records}?_since=0"), &friend)
            .expect(200)
            .data(),
        json!([a])
    );
    assert_eq!(
        s().get(&format!("{records}?_since=0"), &reader)
            .expect(200)
            .data(),
        json!([tomb("b", gone), a])
    );
    s().delete(&format!("{records}/a"), &owner).expect(200);
    assert_403(&s().get(&format!("{records}?_since=0"), &friend));
    assert_eq!(
        s().get(&format!("{records}?_since=0"), &reader)
            .expect(200)
            .data()
            .as_array()
            .unwrap()
            .len(),
        2
    );
}

/// Cairn's promise: a client polling `?_since=<last ETag>` while others
/// write sees every change exactly once: none missed, none twice; and the
/// replica it builds from the changes equals a full read.
#[test]
fn a_poller_sees_every_change_exactly_once() {
    const WRITERS: usize = 3;
    const OPS: usize = 150;
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let start = s().get(&records, &owner).expect(200).etag();
    let done = AtomicBool::new(false);
    let batch_ok = s()
        .req("POST", "/batch")
        .user(&owner)
        .json(&json!({"requests": []}))
        .send()
        .status
        == 200;

    let (acks, polls) = std::thread::scope(|sc| {
        let writers: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (records, owner) = (&records, &owner);
                sc.spawn(move || {
                    // (id, last_modified, deleted) of every acknowledged write.
                    let mut acks: Vec<(String, u64, bool)> = Vec::new();
                    for i in 0..OPS {
                        let id = format!("w{w}-{}", i / 3);
                        match i % 3 {
                            0 => {
                                let d = s().put(&format!("{records}/{id}"), owner, json!({"data": {"i": i}})).expect(201).data();
                                acks.push((id, lm(&d), false));
                            }
                            1 => {
                                let d = s().patch(&format!("{records}/{id}"), owner, json!({"data": {"j": i}})).expect(200).data();
                                acks.push((id, lm(&d), false));
                            }
                            _ if i % 2 == 0 => {
                                let d = s().delete(&format!("{records}/{id}"), owner).expect(200).data();
                                acks.push((id, lm(&d), true));
                            }
                            _ if batch_ok && w == 0 => {
                                let reqs: Vec<Value> = (0..3)
                                    .map(|k| json!({"method": "PUT", "path": format!("{records}/{id}-b{k}"), "body": {"data": {"k": k}}}))
                                    .collect();
                                let resp = s().post("/batch", owner, json!({"requests": reqs})).expect(200).json();
                                for (k, r) in resp["responses"].as_array().unwrap().iter().enumerate() {
                                    assert_eq!(r["status"], 201, "{r}");
                                    acks.push((format!("{id}-b{k}"), lm(&r["body"]["data"]), false));
                                }
                            }
                            _ => {
                                let d = s().put(&format!("{records}/{id}"), owner, json!({"data": {"k": i}})).expect(200).data();
                                acks.push((id, lm(&d), false));
                            }
                        }
                    }
                    acks
                })
            })
            .collect();
        let poller = {
            let (records, owner, done) = (&records, &owner, &done);
            sc.spawn(move || {
                let mut since = start;
                let mut polls: Vec<(u64, u64, Vec<Value>)> = Vec::new();
                let deadline = Instant::now() + Duration::from_secs(60);
                let mut quiet_after_done = 0;
                while quiet_after_done < 2 && Instant::now() < deadline {
                    let finished = done.load(Ordering::SeqCst);
                    let resp = s()
                        .get(&format!("{records}?_since={since}"), owner)
                        .expect(200);
                    let etag = resp.etag();
                    let items = resp.data().as_array().unwrap().clone();
                    if finished && items.is_empty() {
                        quiet_after_done += 1;
                    }
                    polls.push((since, etag, items));
                    since = etag;
                }
                polls
            })
        };
        let acks: Vec<(String, u64, bool)> = writers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        done.store(true, Ordering::SeqCst);
        (acks, poller.join().unwrap())
    });

    // Each poll: items newer than `since`, none newer than the ETag, and
    // the ETag never goes back.
    let mut seen: HashSet<(String, u64)> = HashSet::new();
    let mut replica: BTreeMap<String, Value> = BTreeMap::new();
    let mut latest_seen: BTreeMap<String, u64> = BTreeMap::new();
    for (since, etag, items) in &polls {
        assert!(etag >= since, "ETag went back: {etag} < {since}");
        for item in items {
            let id = item["id"].as_str().unwrap().to_string();
            let t = lm(item);
            assert!(
                t > *since && t <= *etag,
                "item {item} outside ({since}, {etag}]"
            );
            assert!(seen.insert((id.clone(), t)), "seen twice: {item}");
            if let Some(prev) = latest_seen.insert(id.clone(), t) {
                assert!(t > prev, "{id} went back from {prev} to {t}");
            }
            if item["deleted"] == json!(true) {
                replica.remove(&id);
            } else {
                replica.insert(id, item.clone());
            }
        }
    }
    // None missed: every acknowledged write is covered by a later-or-equal
    // version of that object.
    for (id, t, _) in &acks {
        let got = latest_seen.get(id).copied().unwrap_or(0);
        assert!(
            got >= *t,
            "write {id}@{t} was never seen by the poller (latest seen {got})"
        );
    }
    // The replica equals a full read.
    let full = s().get(&records, &owner).expect(200).data();
    let mut expected: BTreeMap<String, Value> = BTreeMap::new();
    for o in full.as_array().unwrap() {
        expected.insert(o["id"].as_str().unwrap().to_string(), o.clone());
    }
    assert_eq!(replica, expected);
    assert!(
        polls.len() > 3,
        "the poller should have polled while writers ran"
    );
}
