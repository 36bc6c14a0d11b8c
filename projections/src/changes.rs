//! `_since` / `_before`: the changes of one list, read back from the log.
//!
//! Every object of a list is in exactly one of `lst/` (live) or `tmb/`
//! (tombstone), at the timestamp of its latest change, and both views are
//! keyed newest first. A `_since=T` query is two forward range scans ending
//! at `T`, merged; each live entry carries the log position of its event
//! (offset and index in the commit), which is read back from the log; a
//! tombstone needs no read (its id and timestamp are in the key). The cost
//! grows with the changes returned, not with the log or other lists.

use std::cmp::Ordering;
use std::fmt;
use std::iter::Peekable;

use eventlog::{LogReader, Record};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer;

use crate::error::ProjectionError;
use crate::event::{Change, Commit, Event, Resource, EVENT_SCHEMA};
use crate::keys;
use crate::listing::to_stored;
use crate::store::{Bytes, KvIter, Store};
use crate::values::{LiveVal, LogPos};
use crate::ChangedObject;

fn check_schema(record: &Record) -> Result<(), ProjectionError> {
    if record.schema != EVENT_SCHEMA {
        return Err(ProjectionError::Decode {
            offset: record.offset,
            reason: format!(
                "payload schema {} (this build reads {EVENT_SCHEMA})",
                record.schema
            ),
        });
    }
    Ok(())
}

/// Decodes a log record into a commit, refusing payload schemas this code
/// does not know (an upcaster would go here).
pub(crate) fn decode_record(record: &Record) -> Result<Commit, ProjectionError> {
    check_schema(record)?;
    Commit::decode(&record.payload).map_err(|e| ProjectionError::Decode {
        offset: record.offset,
        reason: e.to_string(),
    })
}

/// Decodes only event `idx` of a record's commit, skipping the others
/// without allocating: a batch of 100 records is one commit, and a `_since`
/// answer wants one of its events.
fn decode_event(record: &Record, idx: u32) -> Result<Option<Event>, ProjectionError> {
    check_schema(record)?;
    let mut de = rmp_serde::Deserializer::from_read_ref(&record.payload);
    PickEvent { idx }
        .deserialize(&mut de)
        .map_err(|e| ProjectionError::Decode {
            offset: record.offset,
            reason: e.to_string(),
        })
}

/// Seed for a `Commit` that keeps only `events[idx]`. Accepts the named
/// (map) encoding the server writes and the positional (array) one.
struct PickEvent {
    idx: u32,
}

impl<'de> DeserializeSeed<'de> for PickEvent {
    type Value = Option<Event>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_struct("Commit", &["request_id", "user_id", "events"], self)
    }
}

impl<'de> Visitor<'de> for PickEvent {
    type Value = Option<Event>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a commit")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        while let Some(name) = map.next_key::<&str>()? {
            if name == "events" {
                found = map.next_value_seed(PickElement { idx: self.idx })?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        // request_id, user_id, events
        for _ in 0..2 {
            seq.next_element::<IgnoredAny>()?;
        }
        let found = seq
            .next_element_seed(PickElement { idx: self.idx })?
            .flatten();
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(found)
    }
}

/// Seed for the `events` array that keeps only element `idx`.
struct PickElement {
    idx: u32,
}

impl<'de> DeserializeSeed<'de> for PickElement {
    type Value = Option<Event>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for PickElement {
    type Value = Option<Event>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list of events")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut found = None;
        let mut i = 0u32;
        loop {
            if i == self.idx {
                match seq.next_element::<Event>()? {
                    Some(e) => found = Some(e),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_none() {
                break;
            }
            i = i
                .checked_add(1)
                .ok_or_else(|| de::Error::custom("too many events"))?;
        }
        Ok(found)
    }
}

impl Store {
    /// Changes with `since < last_modified < before`, newest first.
    pub(crate) fn changes(
        &self,
        log: &LogReader,
        parent: &str,
        resource: Resource,
        since: Option<u64>,
        before: Option<u64>,
    ) -> ChangesIter {
        let range = |tag: &[u8]| {
            let prefix = keys::list_prefix(tag, parent, resource);
            // Newest first: entries older than `before` start after all the
            // keys of timestamp `before`; those newer than `since` end
            // where timestamp `since` starts.
            let start = match before {
                None => Some(prefix.clone()),
                Some(b) => keys::prefix_end(&keys::ts_bound(tag, parent, resource, b)),
            };
            let end = match since {
                Some(s) => Some(keys::ts_bound(tag, parent, resource, s)),
                None => keys::prefix_end(&prefix),
            };
            match (start, end) {
                (Some(s), Some(e)) if s < e => Some(self.views().range(s..e).peekable()),
                (Some(s), None) => Some(self.views().range(s..).peekable()),
                _ => None,
            }
        };
        ChangesIter {
            live: range(keys::LST),
            tombs: range(keys::TMB),
            log: log.clone(),
            last: None,
        }
    }
}

/// A `_since`/`_before` scan in progress, newest first; owns what it needs.
pub struct ChangesIter {
    live: Option<Peekable<KvIter>>,
    tombs: Option<Peekable<KvIter>>,
    log: LogReader,
    /// The last record read: consecutive changes often come from one
    /// commit (a batch), which is then read once.
    last: Option<Record>,
}

impl fmt::Debug for ChangesIter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChangesIter").finish_non_exhaustive()
    }
}

/// The part of a `lst/` or `tmb/` key after the tag: `P R ~ts I`.
fn suffix(k: &[u8]) -> &[u8] {
    k.get(4..).unwrap_or_default()
}

impl ChangesIter {
    fn next_entry(&mut self) -> Option<Result<(Bytes, Bytes, bool), ProjectionError>> {
        let peek_key = |it: &mut Option<Peekable<KvIter>>| -> Option<Result<Bytes, ()>> {
            match it.as_mut()?.peek()? {
                Ok((k, _)) => Some(Ok(k.clone())),
                Err(_) => Some(Err(())),
            }
        };
        let take = |it: &mut Option<Peekable<KvIter>>, deleted: bool| {
            it.as_mut()
                .and_then(Iterator::next)
                .map(|r| r.map(|(k, v)| (k, v, deleted)))
        };
        let live = peek_key(&mut self.live);
        let tomb = peek_key(&mut self.tombs);
        match (live, tomb) {
            (None, None) => None,
            (Some(Err(())), _) | (Some(_), None) => take(&mut self.live, false),
            (_, Some(Err(()))) | (None, Some(_)) => take(&mut self.tombs, true),
            (Some(Ok(l)), Some(Ok(t))) => match suffix(&l).cmp(suffix(&t)) {
                Ordering::Greater => take(&mut self.tombs, true),
                _ => take(&mut self.live, false),
            },
        }
    }

    fn event(&mut self, offset: u64, idx: u32) -> Result<Option<Event>, ProjectionError> {
        if self.last.as_ref().is_none_or(|r| r.offset != offset) {
            self.last = Some(self.log.read(offset)?);
        }
        match &self.last {
            Some(record) => decode_event(record, idx),
            None => Ok(None),
        }
    }

    fn resolve(
        &mut self,
        k: &[u8],
        v: &[u8],
        deleted: bool,
    ) -> Result<ChangedObject, ProjectionError> {
        let tag = if deleted { keys::TMB } else { keys::LST };
        let (key, ts) = keys::decode_ordered(tag, k)?;
        if deleted {
            LogPos::decode(k, v)?;
            return Ok(ChangedObject {
                id: key.id,
                last_modified: ts,
                object: None,
            });
        }
        let pos = LiveVal::pos(k, v)?;
        let event = self.event(pos.offset, pos.idx)?.ok_or_else(|| {
            ProjectionError::corrupt(
                k,
                format!("log offset {} has no event {}", pos.offset, pos.idx),
            )
        })?;
        if event.key != key || event.last_modified != ts {
            return Err(ProjectionError::corrupt(
                k,
                format!(
                    "log offset {} event {} is another change",
                    pos.offset, pos.idx
                ),
            ));
        }
        match event.change {
            Change::Put { data, permissions } => {
                let object = to_stored(k, ts, &data, permissions)?;
                Ok(ChangedObject {
                    id: key.id,
                    last_modified: ts,
                    object: Some(object),
                })
            }
            Change::Delete => Err(ProjectionError::corrupt(
                k,
                "index says live, log says deleted",
            )),
        }
    }
}

impl Iterator for ChangesIter {
    type Item = Result<ChangedObject, ProjectionError>;

    fn next(&mut self) -> Option<Self::Item> {
        let (k, v, deleted) = match self.next_entry()? {
            Ok(entry) => entry,
            Err(e) => return Some(Err(e)),
        };
        Some(self.resolve(&k, &v, deleted))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::ObjectKey;

    fn record(payload: Vec<u8>) -> Record {
        Record {
            offset: 9,
            ts_ms: 0,
            schema: EVENT_SCHEMA,
            payload,
            hash: Default::default(),
        }
    }

    #[test]
    fn one_event_is_picked_out_of_a_commit_in_either_encoding() {
        let events: Vec<Event> = (0..5u64)
            .map(|n| Event {
                key: ObjectKey::record("b", "c", &format!("r{n}")),
                last_modified: n,
                change: if n == 3 {
                    Change::Delete
                } else {
                    Change::Put {
                        data: format!("{{\"n\":{n}}}").into_bytes(),
                        permissions: Default::default(),
                    }
                },
            })
            .collect();
        let commit = Commit {
            request_id: "q".into(),
            user_id: Some("u".into()),
            events: events.clone(),
        };
        for payload in [commit.encode(), rmp_serde::to_vec(&commit).unwrap()] {
            let rec = record(payload);
            for (i, e) in events.iter().enumerate() {
                assert_eq!(decode_event(&rec, i as u32).unwrap().as_ref(), Some(e));
            }
            assert_eq!(decode_event(&rec, 5).unwrap(), None);
        }
        assert!(matches!(
            decode_event(&record(b"\x93junk".to_vec()), 0),
            Err(ProjectionError::Decode { .. })
        ));
        let mut other = record(commit.encode());
        other.schema = EVENT_SCHEMA + 1;
        assert!(matches!(
            decode_event(&other, 0),
            Err(ProjectionError::Decode { .. })
        ));
    }
}
