//! Random Kinto-shaped histories for property tests: a small universe of
//! buckets, collections, groups and records (with a bucket whose id is a
//! prefix of another's, to catch prefix bugs in cascades), random ACLs and
//! group members, and deletes at every level.

use projections::{Change, Commit, Event, ObjectKey, Permissions};
use proptest::prelude::*;

const BUCKETS: [&str; 3] = ["b", "bc", "x"];
const COLLECTIONS: [&str; 2] = ["c", "d"];
const IDS: [&str; 3] = ["r1", "r2", "r3"];
const PRINCIPALS: [&str; 4] = ["u1", "u2", "system.Everyone", "/buckets/b/groups/g"];
const PERMS: [&str; 2] = ["read", "write"];

/// What to do, before timestamps are assigned.
#[derive(Debug, Clone)]
pub enum Op {
    Put {
        key: ObjectKey,
        acl: Vec<(usize, usize)>,
        members: Vec<usize>,
        n: u8,
    },
    Delete {
        key: ObjectKey,
    },
}

fn key() -> impl Strategy<Value = ObjectKey> {
    let b = 0..BUCKETS.len();
    let c = 0..COLLECTIONS.len();
    let i = 0..IDS.len();
    prop_oneof![
        1 => b.clone().prop_map(|b| ObjectKey::bucket(BUCKETS[b])),
        2 => (b.clone(), c.clone()).prop_map(|(b, c)| ObjectKey::collection(BUCKETS[b], COLLECTIONS[c])),
        1 => b.clone().prop_map(|b| ObjectKey::group(BUCKETS[b], "g")),
        6 => (b, c, i).prop_map(|(b, c, i)| ObjectKey::record(BUCKETS[b], COLLECTIONS[c], IDS[i])),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (
            key(),
            prop::collection::vec((0..PRINCIPALS.len(), 0..PERMS.len()), 0..3),
            prop::collection::vec(0..2usize, 0..3),
            any::<u8>()
        )
            .prop_map(|(key, acl, members, n)| Op::Put { key, acl, members, n }),
        1 => key().prop_map(|key| Op::Delete { key }),
    ]
}

/// Commits of one to four operations each.
pub fn ops() -> impl Strategy<Value = Vec<Vec<Op>>> {
    prop::collection::vec(prop::collection::vec(op(), 1..5), 1..40)
}

/// Turns operations into commits, giving every event a timestamp above
/// all earlier ones (as the sequencer does).
pub fn commits(ops: &[Vec<Op>], first_ts: u64) -> Vec<Commit> {
    let mut ts = first_ts;
    ops.iter()
        .enumerate()
        .map(|(n, group)| Commit {
            request_id: format!("req-{n}"),
            user_id: Some("u1".into()),
            events: group
                .iter()
                .map(|op| {
                    ts += 1;
                    match op {
                        Op::Put {
                            key,
                            acl,
                            members,
                            n,
                        } => {
                            let mut perms = Permissions::new();
                            for &(p, perm) in acl {
                                perms
                                    .entry(PERMS[perm].to_owned())
                                    .or_default()
                                    .push(PRINCIPALS[p].to_owned());
                            }
                            let members: Vec<&str> =
                                members.iter().map(|&m| ["u1", "u2"][m]).collect();
                            let data = serde_json::json!({
                                "id": key.id, "last_modified": ts, "n": n, "members": members,
                            });
                            put(key.clone(), ts, data, perms)
                        }
                        Op::Delete { key } => Event {
                            key: key.clone(),
                            last_modified: ts,
                            change: Change::Delete,
                        },
                    }
                })
                .collect(),
        })
        .collect()
}

pub fn put(key: ObjectKey, ts: u64, data: serde_json::Value, permissions: Permissions) -> Event {
    Event {
        key,
        last_modified: ts,
        change: Change::Put {
            data: serde_json::to_vec(&data).expect("json"),
            permissions,
        },
    }
}

/// Every list the generator can write to, as `(parent, resource)`.
pub fn lists() -> Vec<(String, projections::Resource)> {
    use projections::Resource;
    let mut out = vec![(String::new(), Resource::Bucket)];
    for b in BUCKETS {
        out.push((format!("/buckets/{b}"), Resource::Collection));
        out.push((format!("/buckets/{b}"), Resource::Group));
        for c in COLLECTIONS {
            out.push((format!("/buckets/{b}/collections/{c}"), Resource::Record));
        }
    }
    out
}

/// A fixed history touching every kind of entry, for non-random tests.
pub fn ops_fixed() -> Vec<Vec<Op>> {
    let perms = vec![(0, 0), (1, 1), (3, 0)];
    let put = |key: ObjectKey| Op::Put {
        key,
        acl: perms.clone(),
        members: vec![0, 1],
        n: 1,
    };
    vec![
        vec![put(ObjectKey::bucket("b")), put(ObjectKey::bucket("bc"))],
        vec![
            put(ObjectKey::collection("b", "c")),
            put(ObjectKey::group("b", "g")),
            put(ObjectKey::collection("bc", "c")),
        ],
        vec![
            put(ObjectKey::record("b", "c", "r1")),
            put(ObjectKey::record("b", "c", "r2")),
            put(ObjectKey::record("bc", "c", "r1")),
        ],
        vec![Op::Delete {
            key: ObjectKey::record("b", "c", "r2"),
        }],
        vec![
            put(ObjectKey::record("b", "c", "r1")),
            put(ObjectKey::record("b", "d", "r1")),
        ],
        vec![Op::Delete {
            key: ObjectKey::collection("b", "d"),
        }],
    ]
}
