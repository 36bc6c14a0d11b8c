//! Behaviour of the views after `apply`, checked through the store's reads
//! (no log needed: `_since` reads are tested with a real log in `tests/`).

use eventlog::{ChainHash, Head};
use serde_json::json;

use crate::event::{Change, Commit, Event, ObjectKey, Permissions, Resource};
use crate::store::Store;
use crate::StoredObject;

#[path = "../../tests/common/gen.rs"]
#[allow(dead_code)]
mod gen;

fn head(offset: u64) -> Head {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&offset.to_le_bytes());
    Head {
        offset,
        hash: ChainHash(h),
        ts_ms: offset * 10,
    }
}

fn perms(list: &[(&str, &[&str])]) -> Permissions {
    list.iter()
        .map(|(p, who)| {
            (
                (*p).to_owned(),
                who.iter().map(|s| (*s).to_owned()).collect(),
            )
        })
        .collect()
}

fn put(key: &ObjectKey, ts: u64, extra: serde_json::Value, acl: &[(&str, &[&str])]) -> Event {
    let mut data = json!({"id": key.id, "last_modified": ts});
    if let (Some(d), Some(e)) = (data.as_object_mut(), extra.as_object()) {
        d.extend(e.clone());
    }
    gen::put(key.clone(), ts, data, perms(acl))
}

fn del(key: &ObjectKey, ts: u64) -> Event {
    Event {
        key: key.clone(),
        last_modified: ts,
        change: Change::Delete,
    }
}

/// A store and the next log offset to give a commit.
struct Fixture {
    store: Store,
    next: u64,
}

impl Fixture {
    fn new() -> Self {
        Fixture {
            store: Store::temporary(),
            next: 1,
        }
    }
    fn commit(&mut self, events: Vec<Event>) {
        let c = Commit {
            request_id: "r".into(),
            user_id: None,
            events,
        };
        super::apply_commits(&self.store, &[(head(self.next), &c)]).unwrap();
        self.next += 1;
    }
    fn get(&self, key: &ObjectKey) -> Option<StoredObject> {
        self.store.get_raw(key).unwrap().map(|r| {
            crate::listing::to_stored(b"", r.last_modified, &r.data, r.permissions).unwrap()
        })
    }
    fn ids(
        &self,
        parent: &str,
        resource: Resource,
        after: Option<(u64, &str)>,
        newest_first: bool,
    ) -> Vec<String> {
        self.store
            .list_raw(
                parent,
                resource,
                after.map(|(t, i)| (t, i.to_owned())),
                newest_first,
            )
            .map(|o| {
                let o = o.unwrap();
                let data: serde_json::Value = serde_json::from_slice(&o.data).unwrap();
                assert_eq!(data["last_modified"], o.last_modified);
                data["id"].as_str().unwrap().to_owned()
            })
            .collect()
    }
    /// `(id, ts, deleted)` of the changes index (`lst/` and `tmb/`) of a
    /// list, oldest first.
    fn changes(&self, parent: &str, resource: Resource) -> Vec<(String, u64, bool)> {
        let mut out = Vec::new();
        for (tag, deleted) in [(crate::keys::LST, false), (crate::keys::TMB, true)] {
            let prefix = crate::keys::list_prefix(tag, parent, resource);
            for kv in self.store.views().scan_prefix(prefix) {
                let (k, _) = kv.unwrap();
                let (key, ts) = crate::keys::decode_ordered(tag, &k).unwrap();
                out.push((key.id, ts, deleted));
            }
        }
        out.sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
        out
    }
    fn principals(
        &self,
        who: &[&str],
        parent: &str,
        resource: Resource,
    ) -> Vec<(String, Vec<String>)> {
        let who: Vec<String> = who.iter().map(|s| (*s).to_owned()).collect();
        self.store
            .objects_for_principals(&who, parent, resource)
            .unwrap()
            .into_iter()
            .collect()
    }
}

const C: &str = "/buckets/b/collections/c";

fn rec(id: &str) -> ObjectKey {
    ObjectKey::record("b", "c", id)
}

#[test]
fn put_then_get_returns_the_object_with_count_and_list_timestamp() {
    let mut f = Fixture::new();
    assert_eq!(f.store.list_timestamp(C, Resource::Record).unwrap(), None);
    f.commit(vec![put(
        &rec("a"),
        10,
        json!({"title": "x", "n": 1.5e300}),
        &[("write", &["u"])],
    )]);
    let got = f.get(&rec("a")).unwrap();
    assert_eq!(got.last_modified, 10);
    assert_eq!(got.data["title"], "x");
    assert_eq!(got.data["id"], "a");
    assert_eq!(got.permissions, perms(&[("write", &["u"])]));
    assert_eq!(f.store.count(C, Resource::Record).unwrap(), 1);
    assert_eq!(
        f.store.list_timestamp(C, Resource::Record).unwrap(),
        Some(10)
    );
    assert_eq!(f.store.applied(), head(1));
    // Other lists are untouched.
    assert_eq!(
        f.store.count("/buckets/b", Resource::Collection).unwrap(),
        0
    );
    assert_eq!(f.get(&rec("b")), None);
}

#[test]
fn listing_is_newest_first_with_id_ties_and_pages_strictly_after() {
    let mut f = Fixture::new();
    f.commit(vec![
        put(&rec("a"), 1, json!({}), &[]),
        put(&rec("b"), 2, json!({}), &[]),
        put(&rec("c"), 2, json!({}), &[]),
        put(&rec("d"), 4, json!({}), &[]),
    ]);
    f.commit(vec![put(
        &ObjectKey::record("b", "c2", "z"),
        9,
        json!({}),
        &[],
    )]);
    // Newest first, ties by ascending id; oldest first is the exact reverse.
    assert_eq!(f.ids(C, Resource::Record, None, true), ["d", "b", "c", "a"]);
    assert_eq!(
        f.ids(C, Resource::Record, Some((4, "d")), true),
        ["b", "c", "a"]
    );
    assert_eq!(f.ids(C, Resource::Record, Some((2, "b")), true), ["c", "a"]);
    assert_eq!(f.ids(C, Resource::Record, Some((2, "c")), true), ["a"]);
    assert_eq!(
        f.ids(C, Resource::Record, Some((1, "a")), true),
        Vec::<String>::new()
    );
    assert_eq!(
        f.ids(C, Resource::Record, None, false),
        ["a", "c", "b", "d"]
    );
    assert_eq!(
        f.ids(C, Resource::Record, Some((2, "c")), false),
        ["b", "d"]
    );
    assert_eq!(
        f.ids(C, Resource::Record, Some((4, "d")), false),
        Vec::<String>::new()
    );
    // A page boundary on an object that has since moved still works.
    assert_eq!(
        f.ids(C, Resource::Record, Some((3, "gone")), true),
        ["b", "c", "a"]
    );
    assert_eq!(f.ids(C, Resource::Record, Some((3, "gone")), false), ["d"]);
}

#[test]
fn an_update_moves_the_object_to_the_front_and_keeps_one_change() {
    let mut f = Fixture::new();
    f.commit(vec![
        put(&rec("a"), 1, json!({"v": 1}), &[]),
        put(&rec("b"), 2, json!({}), &[]),
    ]);
    f.commit(vec![put(&rec("a"), 3, json!({"v": 2}), &[])]);
    assert_eq!(f.ids(C, Resource::Record, None, true), ["a", "b"]);
    assert_eq!(f.get(&rec("a")).unwrap().data["v"], 2);
    assert_eq!(f.store.count(C, Resource::Record).unwrap(), 2);
    assert_eq!(
        f.changes(C, Resource::Record),
        [("b".into(), 2, false), ("a".into(), 3, false)]
    );
}

#[test]
fn a_delete_leaves_a_tombstone_that_a_recreate_replaces() {
    let mut f = Fixture::new();
    f.commit(vec![
        put(&rec("a"), 1, json!({}), &[("read", &["u"])]),
        put(&rec("b"), 2, json!({}), &[]),
    ]);
    f.commit(vec![del(&rec("a"), 3)]);
    assert_eq!(f.get(&rec("a")), None);
    assert_eq!(f.ids(C, Resource::Record, None, true), ["b"]);
    assert_eq!(f.store.count(C, Resource::Record).unwrap(), 1);
    assert_eq!(
        f.store.list_timestamp(C, Resource::Record).unwrap(),
        Some(3),
        "a delete moves the list timestamp"
    );
    assert_eq!(
        f.changes(C, Resource::Record),
        [("b".into(), 2, false), ("a".into(), 3, true)]
    );
    assert!(
        f.principals(&["u"], C, Resource::Record).is_empty(),
        "a delete removes the ACL entries"
    );
    f.commit(vec![put(&rec("a"), 4, json!({}), &[])]);
    assert_eq!(
        f.changes(C, Resource::Record),
        [("b".into(), 2, false), ("a".into(), 4, false)]
    );
    assert_eq!(f.store.count(C, Resource::Record).unwrap(), 2);
    // Deleting twice keeps one tombstone and the count right.
    f.commit(vec![del(&rec("b"), 5)]);
    f.commit(vec![del(&rec("b"), 6)]);
    assert_eq!(
        f.changes(C, Resource::Record),
        [("a".into(), 4, false), ("b".into(), 6, true)]
    );
    assert_eq!(f.store.count(C, Resource::Record).unwrap(), 1);
}

#[test]
fn a_list_timestamp_never_goes_back_even_for_an_older_timestamp() {
    // Kinto stores a client-supplied `last_modified` from the past on create.
    let mut f = Fixture::new();
    f.commit(vec![put(&rec("a"), 10, json!({}), &[])]);
    f.commit(vec![put(&rec("old"), 5, json!({}), &[])]);
    assert_eq!(
        f.store.list_timestamp(C, Resource::Record).unwrap(),
        Some(10)
    );
    f.commit(vec![del(&rec("old"), 7)]);
    assert_eq!(
        f.store.list_timestamp(C, Resource::Record).unwrap(),
        Some(10)
    );
    assert_eq!(f.ids(C, Resource::Record, None, true), ["a"]);
}

/// A bucket with a bit of everything below it, and a sibling bucket whose
/// id extends it (`bc`), which a cascade must not touch.
fn populated() -> Fixture {
    let mut f = Fixture::new();
    f.commit(vec![
        put(
            &ObjectKey::bucket("b"),
            1,
            json!({}),
            &[("write", &["owner"])],
        ),
        put(
            &ObjectKey::bucket("bc"),
            2,
            json!({}),
            &[("write", &["owner"])],
        ),
    ]);
    f.commit(vec![
        put(
            &ObjectKey::collection("b", "c"),
            10,
            json!({}),
            &[("read", &["u"])],
        ),
        put(&ObjectKey::collection("b", "old"), 11, json!({}), &[]),
        put(
            &ObjectKey::group("b", "g"),
            12,
            json!({"members": ["u", "v"]}),
            &[("read", &["u"])],
        ),
        put(
            &ObjectKey::collection("bc", "c"),
            13,
            json!({}),
            &[("read", &["u"])],
        ),
        put(
            &ObjectKey::group("bc", "g"),
            14,
            json!({"members": ["u"]}),
            &[],
        ),
    ]);
    f.commit(vec![
        put(
            &rec("r1"),
            20,
            json!({}),
            &[("read", &["u"]), ("write", &["u", "w"])],
        ),
        put(&rec("r2"), 21, json!({}), &[]),
        put(
            &ObjectKey::record("bc", "c", "r1"),
            22,
            json!({}),
            &[("read", &["u"])],
        ),
    ]);
    f.commit(vec![
        del(&rec("r2"), 23),
        del(&ObjectKey::collection("b", "old"), 24),
    ]);
    f
}

#[test]
fn deleting_a_collection_removes_its_records_acls_and_tombstones_but_not_its_list_timestamp() {
    let mut f = populated();
    f.commit(vec![del(&ObjectKey::collection("b", "c"), 30)]);
    assert_eq!(f.get(&rec("r1")), None);
    assert!(f.ids(C, Resource::Record, None, true).is_empty());
    assert_eq!(f.store.count(C, Resource::Record).unwrap(), 0);
    assert!(
        f.changes(C, Resource::Record).is_empty(),
        "record tombstones are purged"
    );
    assert!(f.principals(&["u", "w"], C, Resource::Record).is_empty());
    assert_eq!(
        f.store.list_timestamp(C, Resource::Record).unwrap(),
        Some(23),
        "never goes back"
    );
    // Only the collection leaves a tombstone, in its parent's list.
    assert_eq!(
        f.changes("/buckets/b", Resource::Collection),
        [("old".into(), 24, true), ("c".into(), 30, true)]
    );
    assert_eq!(
        f.store.count("/buckets/b", Resource::Collection).unwrap(),
        0
    );
    // The group of the same bucket and the other bucket are untouched.
    assert_eq!(f.store.groups_of("v").unwrap(), ["/buckets/b/groups/g"]);
    assert_eq!(
        f.ids("/buckets/bc/collections/c", Resource::Record, None, true),
        ["r1"]
    );
    // Re-created, the collection is empty and its records' timestamp did not go back.
    f.commit(vec![put(
        &ObjectKey::collection("b", "c"),
        31,
        json!({}),
        &[],
    )]);
    assert!(f.changes(C, Resource::Record).is_empty());
    assert_eq!(
        f.store.list_timestamp(C, Resource::Record).unwrap(),
        Some(23)
    );
}

#[test]
fn deleting_a_bucket_removes_everything_below_it_and_nothing_beside_it() {
    let mut f = populated();
    let before_bc: Vec<String> = f
        .store
        .dump()
        .unwrap()
        .lines()
        .filter(|l| l.contains("bc"))
        .map(str::to_owned)
        .collect();
    f.commit(vec![del(&ObjectKey::bucket("b"), 40)]);
    for key in [
        ObjectKey::bucket("b"),
        ObjectKey::collection("b", "c"),
        ObjectKey::group("b", "g"),
        rec("r1"),
    ] {
        assert_eq!(f.get(&key), None, "{key:?}");
    }
    assert!(f.changes("/buckets/b", Resource::Collection).is_empty());
    assert!(f.changes("/buckets/b", Resource::Group).is_empty());
    assert!(f.changes(C, Resource::Record).is_empty());
    assert_eq!(
        f.changes("", Resource::Bucket),
        [("bc".into(), 2, false), ("b".into(), 40, true)]
    );
    assert_eq!(f.store.groups_of("v").unwrap(), Vec::<String>::new());
    assert_eq!(f.store.groups_of("u").unwrap(), ["/buckets/bc/groups/g"]);
    assert!(f
        .principals(&["u"], "/buckets/b", Resource::Collection)
        .is_empty());
    assert!(f
        .principals(&["u"], "/buckets/b", Resource::Group)
        .is_empty());
    assert_eq!(f.store.count("", Resource::Bucket).unwrap(), 1);
    // List timestamps below the bucket survive.
    assert_eq!(
        f.store
            .list_timestamp("/buckets/b", Resource::Collection)
            .unwrap(),
        Some(24)
    );
    assert_eq!(
        f.store
            .list_timestamp("/buckets/b", Resource::Group)
            .unwrap(),
        Some(12)
    );
    assert_eq!(
        f.store.list_timestamp(C, Resource::Record).unwrap(),
        Some(23)
    );
    // Everything about `bc` is exactly as it was.
    let after_bc: Vec<String> = f
        .store
        .dump()
        .unwrap()
        .lines()
        .filter(|l| l.contains("bc"))
        .map(str::to_owned)
        .collect();
    assert_eq!(before_bc, after_bc);
    // No entry of any view is left below `/buckets/b` except list timestamps.
    for line in f.store.dump().unwrap().lines() {
        if line.contains("\"/buckets/b\"") || line.contains("\"/buckets/b/") {
            assert!(line.starts_with("lts "), "left behind: {line}");
        }
    }
}

#[test]
fn a_cascade_sees_objects_created_earlier_in_the_same_batch() {
    let mut f = Fixture::new();
    let c = Commit {
        request_id: "r".into(),
        user_id: None,
        events: vec![
            put(&ObjectKey::bucket("b"), 1, json!({}), &[]),
            put(&ObjectKey::collection("b", "c"), 2, json!({}), &[]),
            put(&rec("r"), 3, json!({}), &[("read", &["u"])]),
        ],
    };
    let d = Commit {
        request_id: "r".into(),
        user_id: None,
        events: vec![del(&ObjectKey::bucket("b"), 4)],
    };
    super::apply_commits(&f.store, &[(head(1), &c), (head(2), &d)]).unwrap();
    f.next = 3;
    assert!(f.principals(&["u"], C, Resource::Record).is_empty());
    assert!(f.changes(C, Resource::Record).is_empty());
    assert_eq!(f.store.count(C, Resource::Record).unwrap(), 0);
}

#[test]
fn the_principal_index_follows_each_objects_own_acl() {
    let mut f = Fixture::new();
    f.commit(vec![
        put(
            &rec("a"),
            1,
            json!({}),
            &[("read", &["u", "g"]), ("write", &["u"])],
        ),
        put(&rec("b"), 2, json!({}), &[("write", &["g"])]),
        put(&rec("c"), 3, json!({}), &[("read", &["other"])]),
        put(
            &ObjectKey::record("b", "c2", "a"),
            4,
            json!({}),
            &[("read", &["u"])],
        ),
    ]);
    let s = |v: &[&str]| v.iter().map(|x| (*x).to_owned()).collect::<Vec<_>>();
    assert_eq!(
        f.principals(&["u", "g"], C, Resource::Record),
        [
            ("a".into(), s(&["read", "write"])),
            ("b".into(), s(&["write"]))
        ]
    );
    assert_eq!(
        f.principals(&["g"], C, Resource::Record),
        [("a".into(), s(&["read"])), ("b".into(), s(&["write"]))]
    );
    // Replacing the ACL removes what is no longer granted.
    f.commit(vec![put(&rec("a"), 5, json!({}), &[("write", &["g"])])]);
    assert_eq!(
        f.principals(&["u"], C, Resource::Record),
        Vec::<(String, Vec<String>)>::new()
    );
    assert_eq!(
        f.principals(&["g"], C, Resource::Record),
        [("a".into(), s(&["write"])), ("b".into(), s(&["write"]))]
    );
    f.commit(vec![del(&rec("b"), 6)]);
    assert_eq!(
        f.principals(&["g"], C, Resource::Record),
        [("a".into(), s(&["write"]))]
    );
    // Across lists: every object naming a principal.
    f.commit(vec![put(
        &ObjectKey::account("g"),
        7,
        json!({}),
        &[("write", &["g"])],
    )]);
    assert_eq!(
        f.store.objects_naming("g").unwrap(),
        [
            (ObjectKey::account("g"), s(&["write"])),
            (rec("a"), s(&["write"]))
        ]
    );
    assert!(f.store.objects_naming("nobody").unwrap().is_empty());
}

#[test]
fn the_member_index_follows_group_members() {
    let mut f = Fixture::new();
    let g1 = ObjectKey::group("b", "g1");
    let g2 = ObjectKey::group("b2", "g2");
    f.commit(vec![
        put(&g1, 1, json!({"members": ["u", "v", "u"]}), &[]),
        put(&g2, 2, json!({"members": ["u", 3]}), &[]),
        // Only groups make members: a record with a `members` field does not.
        put(&rec("r"), 3, json!({"members": ["u"]}), &[]),
    ]);
    assert_eq!(
        f.store.groups_of("u").unwrap(),
        ["/buckets/b/groups/g1", "/buckets/b2/groups/g2"]
    );
    assert_eq!(f.store.groups_of("v").unwrap(), ["/buckets/b/groups/g1"]);
    assert_eq!(f.store.groups_of("w").unwrap(), Vec::<String>::new());
    f.commit(vec![put(&g1, 4, json!({"members": ["w"]}), &[])]);
    assert_eq!(f.store.groups_of("u").unwrap(), ["/buckets/b2/groups/g2"]);
    assert_eq!(f.store.groups_of("w").unwrap(), ["/buckets/b/groups/g1"]);
    f.commit(vec![del(&g2, 5)]);
    assert_eq!(f.store.groups_of("u").unwrap(), Vec::<String>::new());
}

#[test]
fn commits_at_or_below_the_applied_offset_are_skipped() {
    let mut f = Fixture::new();
    f.commit(vec![put(&rec("a"), 1, json!({}), &[])]);
    f.commit(vec![put(&rec("a"), 2, json!({"v": 2}), &[])]);
    let dump = f.store.dump().unwrap();
    let old = Commit {
        request_id: "r".into(),
        user_id: None,
        events: vec![put(&rec("a"), 1, json!({"v": 1}), &[])],
    };
    assert_eq!(
        super::apply_commits(&f.store, &[(head(1), &old), (head(2), &old)]).unwrap(),
        0
    );
    assert_eq!(f.store.dump().unwrap(), dump);
    assert_eq!(f.store.applied(), head(2));
}

#[test]
fn a_commit_that_skips_an_offset_is_refused_and_nothing_is_written() {
    let mut f = Fixture::new();
    f.commit(vec![put(&rec("a"), 1, json!({}), &[])]);
    let dump = f.store.dump().unwrap();
    let c = Commit {
        request_id: "r".into(),
        user_id: None,
        events: vec![put(&rec("b"), 2, json!({}), &[])],
    };
    let err = super::apply_commits(&f.store, &[(head(2), &c), (head(4), &c)]).unwrap_err();
    assert!(
        matches!(
            err,
            crate::ProjectionError::Gap {
                applied: 2,
                next: 4
            }
        ),
        "{err}"
    );
    assert_eq!(f.store.dump().unwrap(), dump);
    assert_eq!(f.store.applied(), head(1));
}

mod batches {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        /// Where batch boundaries fall never changes the result: the
        /// overlay gives every event the state its predecessors left.
        #[test]
        fn batching_does_not_change_the_views(ops in gen::ops(), cuts in prop::collection::vec(any::<bool>(), 40)) {
            let commits = gen::commits(&ops, 1000);
            let one_by_one = Store::temporary();
            for (n, c) in commits.iter().enumerate() {
                super::super::apply_commits(&one_by_one, &[(head(n as u64 + 1), c)]).unwrap();
            }
            let batched = Store::temporary();
            let mut pending = Vec::new();
            for (n, c) in commits.iter().enumerate() {
                pending.push((head(n as u64 + 1), c));
                if cuts[n % cuts.len()] {
                    super::super::apply_commits(&batched, &pending).unwrap();
                    pending.clear();
                }
            }
            super::super::apply_commits(&batched, &pending).unwrap();
            prop_assert_eq!(one_by_one.dump().unwrap(), batched.dump().unwrap());
        }
    }
}
