//! How one event changes the views. Every view entry of an object is
//! derived from its entry in the object view, so an update first removes
//! what the previous state put in the other views (`unlink`), then adds
//! what the new state needs (`link`); a delete also walks the object's
//! descendants (Kinto's cascade) and unlinks each of them.

use eventlog::Head;

use crate::acl_index;
use crate::error::ProjectionError;
use crate::event::{Change, Commit, Event, ObjectKey, Resource};
use crate::keys;
use crate::store::{Overlay, Store};
use crate::values::{decode_u64, encode_u64, ChgVal, ObjVal};

/// Applies the commits above the applied offset in one atomic batch that
/// also moves `meta/applied`. Commits at or below it are skipped, so
/// replaying what is already applied is a no-op. Returns how many commits
/// were applied.
pub(crate) fn apply_commits(
    store: &Store,
    commits: &[(Head, &Commit)],
) -> Result<usize, ProjectionError> {
    let _writer = store.lock_writer();
    let mut last = store.applied();
    let mut ov = store.overlay();
    let mut applied = 0;
    for (head, commit) in commits {
        if head.offset <= last.offset {
            continue;
        }
        for (idx, event) in commit.events.iter().enumerate() {
            let idx = u32::try_from(idx).map_err(|_| ProjectionError::Decode {
                offset: head.offset,
                reason: "more than 2^32 events in one commit".into(),
            })?;
            apply_event(&mut ov, head.offset, idx, event)?;
        }
        last = *head;
        applied += 1;
    }
    if applied > 0 {
        store.commit(ov, last)?;
    }
    Ok(applied)
}

fn apply_event(
    ov: &mut Overlay<'_>,
    offset: u64,
    idx: u32,
    event: &Event,
) -> Result<(), ProjectionError> {
    let key = &event.key;
    let ts = event.last_modified;
    let obj_key = keys::obj(key);
    if let Some(old) = ov.get(&obj_key)? {
        let old = ObjVal::decode(&obj_key, &old)?;
        unlink(ov, key, &old)?;
    }
    raise_list_timestamp(ov, key, ts)?;
    let (value, deleted) = match &event.change {
        Change::Put { data, permissions } => {
            let value = ObjVal {
                last_modified: ts,
                deleted: false,
                data: data.clone(),
                permissions: permissions.clone(),
            };
            link(ov, key, &value)?;
            (value, false)
        }
        Change::Delete => {
            if matches!(key.resource, Resource::Bucket | Resource::Collection) {
                cascade(ov, key)?;
            }
            (
                ObjVal {
                    last_modified: ts,
                    deleted: true,
                    data: Vec::new(),
                    permissions: Default::default(),
                },
                true,
            )
        }
    };
    ov.put(
        keys::ordered(keys::CHG, key, ts),
        &ChgVal {
            offset,
            idx,
            deleted,
        }
        .encode()[..],
    );
    ov.put(obj_key, value.encode());
    Ok(())
}

/// Removes everything the object's current entry (live or tombstone) put in
/// the other views. List timestamps stay: they never go back.
fn unlink(ov: &mut Overlay<'_>, key: &ObjectKey, old: &ObjVal) -> Result<(), ProjectionError> {
    ov.del(keys::ordered(keys::CHG, key, old.last_modified));
    if !old.deleted {
        ov.del(keys::ordered(keys::LST, key, old.last_modified));
        acl_index::unlink(ov, key, &old.permissions, &old.data);
        add_to_count(ov, key, -1)?;
    }
    Ok(())
}

/// Adds a live object's entries to the listing, count and indexes (the
/// caller writes the object and change entries).
fn link(ov: &mut Overlay<'_>, key: &ObjectKey, value: &ObjVal) -> Result<(), ProjectionError> {
    ov.put(keys::ordered(keys::LST, key, value.last_modified), &[][..]);
    acl_index::link(ov, key, &value.permissions, &value.data);
    add_to_count(ov, key, 1)
}

/// Kinto section 15: removes every object below `key` with its ACL entries,
/// memberships and tombstones, leaving no trace but the list timestamps.
fn cascade(ov: &mut Overlay<'_>, key: &ObjectKey) -> Result<(), ProjectionError> {
    for prefix in keys::descendant_prefixes(&key.uri()) {
        for item in ov.scan_prefix(&prefix) {
            let (k, v) = item?;
            let child = keys::decode_obj(&k)?;
            let value = ObjVal::decode(&k, &v)?;
            unlink(ov, &child, &value)?;
            ov.del(k.to_vec());
        }
    }
    Ok(())
}

fn raise_list_timestamp(
    ov: &mut Overlay<'_>,
    key: &ObjectKey,
    ts: u64,
) -> Result<(), ProjectionError> {
    let k = keys::list_prefix(keys::LTS, &key.parent, key.resource);
    let current = match ov.get(&k)? {
        Some(b) => Some(decode_u64(&k, &b)?),
        None => None,
    };
    if current.is_none_or(|c| ts > c) {
        ov.put(k, &encode_u64(ts)[..]);
    }
    Ok(())
}

/// Counts are kept only for non-empty lists, so a cascade leaves no count
/// key behind and the dump of a rebuilt store has nothing extra.
fn add_to_count(ov: &mut Overlay<'_>, key: &ObjectKey, delta: i64) -> Result<(), ProjectionError> {
    let k = keys::list_prefix(keys::CNT, &key.parent, key.resource);
    let current = match ov.get(&k)? {
        Some(b) => decode_u64(&k, &b)?,
        None => 0,
    };
    let next = current.checked_add_signed(delta).ok_or_else(|| {
        ProjectionError::corrupt(&k, format!("count {current} {delta:+} out of range"))
    })?;
    if next == 0 {
        ov.del(k);
    } else {
        ov.put(k, &encode_u64(next)[..]);
    }
    Ok(())
}

#[cfg(test)]
mod tests;
