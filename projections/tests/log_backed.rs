//! The projections over a real log: `_since`/`_before` read back from the
//! log, and invariant 1 (a rebuild from the log equals the incremental
//! state, whatever happened to the projection directory).

mod common;

use common::{gen, Harness};
use projections::{Change, ChangedObject, Commit, Event, ObjectKey, Permissions, Resource};
use proptest::prelude::*;
use serde_json::json;

const C: &str = "/buckets/b/collections/c";

fn commit(events: Vec<Event>) -> Commit {
    Commit {
        request_id: "req".into(),
        user_id: Some("u".into()),
        events,
    }
}

fn put(id: &str, ts: u64, v: i64) -> Event {
    gen::put(
        ObjectKey::record("b", "c", id),
        ts,
        json!({"id": id, "last_modified": ts, "v": v}),
        Permissions::new(),
    )
}

fn del(key: ObjectKey, ts: u64) -> Event {
    Event {
        key,
        last_modified: ts,
        change: Change::Delete,
    }
}

/// `(id, ts, v)` with `v = None` for a tombstone.
fn summary(changes: &[ChangedObject]) -> Vec<(String, u64, Option<i64>)> {
    changes
        .iter()
        .map(|c| {
            (
                c.id.clone(),
                c.last_modified,
                c.object.as_ref().map(|o| o.data["v"].as_i64().expect("v")),
            )
        })
        .collect()
}

fn s(id: &str, ts: u64, v: Option<i64>) -> (String, u64, Option<i64>) {
    (id.to_owned(), ts, v)
}

#[test]
fn changes_come_from_the_log_once_per_object_newest_first() {
    let mut h = Harness::new();
    let p = h.open();
    h.write(
        &p,
        &[
            commit(vec![put("a", 1, 1), put("b", 2, 1)]),
            commit(vec![put("c", 3, 1)]),
        ],
    );
    h.write(
        &p,
        &[
            commit(vec![put("a", 4, 2)]),
            commit(vec![del(ObjectKey::record("b", "c", "b"), 5)]),
        ],
    );
    // Traffic elsewhere does not show up.
    h.write(
        &p,
        &[commit(vec![gen::put(
            ObjectKey::record("b", "other", "x"),
            6,
            json!({"v": 0}),
            Permissions::new(),
        )])],
    );
    h.write(&p, &[commit(vec![put("d", 7, 1), put("e", 8, 1)])]);

    let all = p.changes(C, Resource::Record, None, None).unwrap();
    assert_eq!(
        summary(&all),
        [
            s("e", 8, Some(1)),
            s("d", 7, Some(1)),
            s("b", 5, None),
            s("a", 4, Some(2)),
            s("c", 3, Some(1))
        ]
    );
    assert_eq!(
        summary(&p.changes(C, Resource::Record, Some(3), None).unwrap()),
        [
            s("e", 8, Some(1)),
            s("d", 7, Some(1)),
            s("b", 5, None),
            s("a", 4, Some(2))
        ]
    );
    assert_eq!(
        summary(&p.changes(C, Resource::Record, Some(3), Some(8)).unwrap()),
        [s("d", 7, Some(1)), s("b", 5, None), s("a", 4, Some(2))]
    );
    assert_eq!(
        summary(&p.changes(C, Resource::Record, None, Some(4)).unwrap()),
        [s("c", 3, Some(1))]
    );
    assert!(p
        .changes(C, Resource::Record, Some(8), None)
        .unwrap()
        .is_empty());
    assert!(p
        .changes(C, Resource::Record, Some(u64::MAX), None)
        .unwrap()
        .is_empty());
    assert!(p
        .changes(C, Resource::Record, None, Some(0))
        .unwrap()
        .is_empty());
    // Lazily: only what is taken.
    let first_two: Vec<_> = p
        .changes_iter(C, Resource::Record, None, None)
        .take(2)
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        summary(&first_two),
        [s("e", 8, Some(1)), s("d", 7, Some(1))]
    );
    // A live change is the object as the object view has it.
    for c in &all {
        let key = ObjectKey::record("b", "c", &c.id);
        assert_eq!(c.object, p.get(&key).unwrap());
    }
    // A deleted and re-created collection starts with no changes.
    h.write(
        &p,
        &[commit(vec![del(ObjectKey::collection("b", "c"), 20)])],
    );
    assert!(p
        .changes(C, Resource::Record, None, None)
        .unwrap()
        .is_empty());
    assert_eq!(p.list_timestamp(C, Resource::Record).unwrap(), Some(8));
    assert_eq!(
        p.changes("/buckets/b", Resource::Collection, None, None)
            .unwrap(),
        [ChangedObject {
            id: "c".into(),
            last_modified: 20,
            object: None
        }]
    );
}

#[test]
fn consistent_reads_see_whole_batches() {
    let mut h = Harness::new();
    let p = h.open();
    h.write(&p, &[commit(vec![put("a", 1, 1), put("b", 2, 1)])]);
    let (ts, ids) = p
        .consistent(|p| {
            let ts = p.list_timestamp(C, Resource::Record)?;
            let ids = p
                .list(C, Resource::Record, None)
                .map(|o| o.map(|o| o.last_modified))
                .collect::<Result<Vec<_>, _>>()?;
            Ok((ts, ids))
        })
        .unwrap();
    assert_eq!((ts, ids), (Some(2), vec![2, 1]));
}

#[test]
fn a_deleted_projection_directory_is_rebuilt_identically() {
    let mut h = Harness::new();
    let p = h.open();
    let ops = gen::ops_fixed();
    h.write(&p, &gen::commits(&ops, 100));
    let before = p.dump().unwrap();
    drop(p);
    std::fs::remove_dir_all(&h.dir).unwrap();
    let p = h.open();
    assert_eq!(p.dump().unwrap(), before);
    assert_eq!(p.applied(), h.log.head());
}

#[test]
fn a_corrupt_projection_directory_is_moved_aside_and_rebuilt_identically() {
    let mut h = Harness::new();
    let p = h.open();
    h.write(&p, &gen::commits(&gen::ops_fixed(), 100));
    let before = p.dump().unwrap();
    drop(p);
    // fjall refuses a store whose format version file it cannot read.
    std::fs::write(h.dir.join("version"), b"garbage, not a version").unwrap();
    let p = h.open();
    assert_eq!(p.dump().unwrap(), before);
    let aside: Vec<String> = std::fs::read_dir(h.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("projections.corrupt-"))
        .collect();
    assert_eq!(
        aside.len(),
        1,
        "the damaged store is kept for the operator: {aside:?}"
    );
    // And nothing else is left beside it.
    let others: Vec<String> = std::fs::read_dir(h.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("projections.") && !n.starts_with("projections.corrupt-"))
        .collect();
    assert!(others.is_empty(), "{others:?}");
}

#[test]
fn a_projection_of_another_log_is_rebuilt() {
    let mut h = Harness::new();
    let p = h.open();
    h.write(
        &p,
        &[commit(vec![put("a", 1, 1)]), commit(vec![put("b", 2, 1)])],
    );
    drop(p);
    // Replace the log by another one with more records: same offsets,
    // other contents, so only the chain hash tells them apart.
    let log_dir = h.tmp.path().join("log");
    drop(std::mem::replace(
        &mut h.log,
        eventlog::Log::open(&h.tmp.path().join("log2"), Default::default()).unwrap(),
    ));
    std::fs::remove_dir_all(&log_dir).unwrap();
    h.append(&[
        commit(vec![put("x", 1, 9)]),
        commit(vec![put("y", 2, 9)]),
        commit(vec![put("z", 3, 9)]),
    ]);
    let p = h.open();
    assert_eq!(p.get(&ObjectKey::record("b", "c", "a")).unwrap(), None);
    assert_eq!(p.count(C, Resource::Record).unwrap(), 3);
    assert_eq!(p.dump().unwrap(), h.fresh_dump());
}

#[test]
fn a_projection_ahead_of_the_log_is_rebuilt() {
    let mut h = Harness::new();
    let p = h.open();
    h.write(
        &p,
        &[commit(vec![put("a", 1, 1)]), commit(vec![put("b", 2, 1)])],
    );
    drop(p);
    // An older copy of the log comes back (restored from a backup).
    drop(std::mem::replace(
        &mut h.log,
        eventlog::Log::open(&h.tmp.path().join("log2"), Default::default()).unwrap(),
    ));
    h.append(&[commit(vec![put("a", 1, 1)])]);
    let p = h.open();
    assert_eq!(p.count(C, Resource::Record).unwrap(), 1);
    assert_eq!(p.applied(), h.log.head());
    assert_eq!(p.dump().unwrap(), h.fresh_dump());
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Invariant 1: apply random histories incrementally over several
    /// restarts, sometimes leaving commits unapplied (the store lost them in a
    /// crash; the start replays them), then compare with a rebuild.
    #[test]
    fn incremental_state_equals_a_rebuild_from_the_log(
        ops in gen::ops(),
        plan in prop::collection::vec((1..8usize, 0..4u8), 1..6),
    ) {
        let commits = gen::commits(&ops, 1000);
        let mut h = Harness::new();
        let mut rest: &[Commit] = &commits;
        for (n, unapplied) in plan.iter().cycle().take(8) {
            if rest.is_empty() {
                break;
            }
            let p = h.open();
            prop_assert_eq!(p.applied(), h.log.head(), "open catches up with the log");
            let (now, later) = rest.split_at((*n).min(rest.len()));
            rest = later;
            // Group commits of one to three records.
            for group in now.chunks(1 + (*n % 3)) {
                h.write(&p, group);
            }
            if *unapplied == 0 {
                let lost = &rest[..rest.len().min(2)];
                h.append(lost);
                rest = &rest[lost.len()..];
            }
        }
        h.append(rest);
        let p = h.open();
        prop_assert_eq!(p.applied(), h.log.head());
        let incremental = p.dump().unwrap();
        prop_assert_eq!(&incremental, &h.fresh_dump());
        // `_since` answers agree with the object view for every list.
        for (parent, resource) in gen::lists() {
            for c in p.changes(&parent, resource, None, None).unwrap() {
                let key = ObjectKey { parent: parent.clone(), resource, id: c.id.clone() };
                prop_assert_eq!(c.object, p.get(&key).unwrap());
            }
        }
    }
}

/// The engine's journal is its only copy of batches not yet in its tables.
/// fjall, finding a damaged or cut journal, keeps the batches before the
/// damage and drops the rest: `meta/applied` goes back with them (it is in
/// every batch), and the start replays what was lost from the log.
#[test]
fn a_damaged_or_cut_store_journal_is_made_good_from_the_log() {
    type Damage = fn(&mut Vec<u8>, usize);
    let damages: [(&str, Damage); 2] = [
        ("cut in the middle", |bytes, used| bytes.truncate(used / 2)),
        ("garbage in the middle", |bytes, used| {
            for b in &mut bytes[used / 2..used / 2 + 64] {
                *b ^= 0x5A;
            }
        }),
    ];
    for (what, damage) in damages {
        let mut h = Harness::new();
        let p = h.open();
        h.write(&p, &gen::commits(&gen::ops_fixed(), 100));
        // Dropped without a flush: the batches are in the journal only.
        drop(p);
        let journal = h.dir.join("0.jnl");
        let mut bytes = std::fs::read(&journal).unwrap();
        // The journal file is preallocated: damage the part in use.
        let used = bytes.iter().rposition(|&b| b != 0).unwrap() + 1;
        assert!(used > 1024, "{what}: the journal holds the batches");
        let entries_before = store_entries(&h.dir);
        damage(&mut bytes, used);
        std::fs::write(&journal, &bytes).unwrap();
        let survived = store_entries(&h.dir);
        assert!(
            survived < entries_before,
            "{what}: the damage lost batches ({survived} of {entries_before} entries left)"
        );
        let p = h.open();
        assert_eq!(p.applied(), h.log.head(), "{what}");
        assert_eq!(p.dump().unwrap(), h.fresh_dump(), "{what}");
    }
}

/// Entries in the store at `dir`, read with the engine directly.
fn store_entries(dir: &std::path::Path) -> usize {
    let db = fjall::Database::builder(dir).open().unwrap();
    let ks = db
        .keyspace("views", fjall::KeyspaceCreateOptions::default)
        .unwrap();
    ks.iter().count()
}
