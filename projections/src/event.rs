//! The events Cairn writes to the log: what changed, by whom, and the full
//! state after the change. One log record holds one [`Commit`]: all the events
//! of one write request, so a request commits or fails as a whole.
//!
//! Encoding: `rmp_serde::to_vec_named` (field names kept, so added fields stay
//! readable); Kinto `data` travels as JSON bytes so numbers are never rewritten
//! by a JSON → MessagePack → JSON round trip.

use std::collections::BTreeMap;

use std::fmt;

use serde::de::{self, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

/// Payload schema version written in each log record.
pub const EVENT_SCHEMA: u16 = 1;

/// The kinds of Kinto objects: the four of the core API, and the accounts
/// of the accounts plugin (parent `""`, URI `/accounts/{id}`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resource {
    Bucket,
    Collection,
    Group,
    Record,
    Account,
}

impl Resource {
    /// Kinto's `resource_name` (`"bucket"`, …).
    pub fn name(self) -> &'static str {
        match self {
            Resource::Bucket => "bucket",
            Resource::Collection => "collection",
            Resource::Group => "group",
            Resource::Record => "record",
            Resource::Account => "account",
        }
    }
    /// The plural URL segment (`"buckets"`, …).
    pub fn plural(self) -> &'static str {
        match self {
            Resource::Bucket => "buckets",
            Resource::Collection => "collections",
            Resource::Group => "groups",
            Resource::Record => "records",
            Resource::Account => "accounts",
        }
    }
}

/// Where an object lives, as Kinto's storage addresses it:
/// `(parent_id, resource_name, object_id)`.
///
/// `parent` is `""` for buckets, `/buckets/{bid}` for collections and groups,
/// `/buckets/{bid}/collections/{cid}` for records.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ObjectKey {
    pub parent: String,
    pub resource: Resource,
    pub id: String,
}

impl ObjectKey {
    pub fn bucket(bid: &str) -> Self {
        ObjectKey {
            parent: String::new(),
            resource: Resource::Bucket,
            id: bid.to_owned(),
        }
    }
    pub fn collection(bid: &str, cid: &str) -> Self {
        ObjectKey {
            parent: format!("/buckets/{bid}"),
            resource: Resource::Collection,
            id: cid.to_owned(),
        }
    }
    pub fn group(bid: &str, gid: &str) -> Self {
        ObjectKey {
            parent: format!("/buckets/{bid}"),
            resource: Resource::Group,
            id: gid.to_owned(),
        }
    }
    pub fn record(bid: &str, cid: &str, rid: &str) -> Self {
        ObjectKey {
            parent: format!("/buckets/{bid}/collections/{cid}"),
            resource: Resource::Record,
            id: rid.to_owned(),
        }
    }
    pub fn account(id: &str) -> Self {
        ObjectKey {
            parent: String::new(),
            resource: Resource::Account,
            id: id.to_owned(),
        }
    }
    /// The object's URI, as used in permissions: `/buckets/b/collections/c`.
    pub fn uri(&self) -> String {
        format!("{}/{}/{}", self.parent, self.resource.plural(), self.id)
    }
}

/// Permission name → principals, e.g. `{"write": ["basicauth:…"]}`.
/// Empty lists are not stored.
pub type Permissions = BTreeMap<String, Vec<String>>;

/// One change to one object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Event {
    pub key: ObjectKey,
    /// The object's new `last_modified` (or the tombstone's).
    pub last_modified: u64,
    pub change: Change,
}

/// Serialized as a map tagged by `action` (`{"action": "put", "data": …,
/// "permissions": …}`); decoded by hand, see [`ChangeVisitor`].
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "action", rename_all = "lowercase")]
pub enum Change {
    /// Created or replaced: the full state after the change.
    /// `data` is the JSON object as served (including `id` and `last_modified`).
    Put {
        #[serde(with = "serde_bytes")]
        data: Vec<u8>,
        permissions: Permissions,
    },
    /// Deleted. Deleting a bucket or collection also removes everything below
    /// it, with their ACLs and tombstones (Kinto's cascade); only this object
    /// leaves a tombstone, in its parent's list.
    Delete,
}

/// serde's derived decoder for a tagged enum buffers every field into a
/// generic tree before building the variant, which was a third of the
/// cost of reading the log on a rebuild. This one reads the fields
/// straight into place, and accepts what the derived one did: the named
/// (map) form in any field order, unknown fields ignored, and the
/// positional (array) form `[action, data, permissions]`.
impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ChangeVisitor)
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Action {
    Put,
    Delete,
}

#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "lowercase")]
enum ChangeField {
    Action,
    Data,
    Permissions,
    #[serde(other)]
    Other,
}

struct ChangeVisitor;

impl<'de> Visitor<'de> for ChangeVisitor {
    type Value = Change;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a change tagged by `action`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Change, A::Error> {
        let mut action = None;
        let mut data: Option<serde_bytes::ByteBuf> = None;
        let mut permissions = None;
        while let Some(field) = map.next_key()? {
            match field {
                ChangeField::Action if action.is_some() => {
                    return Err(de::Error::duplicate_field("action"))
                }
                ChangeField::Action => action = Some(map.next_value()?),
                ChangeField::Data if data.is_some() => {
                    return Err(de::Error::duplicate_field("data"))
                }
                ChangeField::Data => data = Some(map.next_value()?),
                ChangeField::Permissions if permissions.is_some() => {
                    return Err(de::Error::duplicate_field("permissions"))
                }
                ChangeField::Permissions => permissions = Some(map.next_value()?),
                ChangeField::Other => {
                    map.next_value::<de::IgnoredAny>()?;
                }
            }
        }
        match action.ok_or_else(|| de::Error::missing_field("action"))? {
            Action::Delete => Ok(Change::Delete),
            Action::Put => Ok(Change::Put {
                data: data
                    .ok_or_else(|| de::Error::missing_field("data"))?
                    .into_vec(),
                permissions: permissions.ok_or_else(|| de::Error::missing_field("permissions"))?,
            }),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Change, A::Error> {
        let missing = |n| de::Error::invalid_length(n, &"a tag, then the variant's fields");
        match seq.next_element()?.ok_or_else(|| missing(0))? {
            Action::Delete => Ok(Change::Delete),
            Action::Put => {
                let data: serde_bytes::ByteBuf = seq.next_element()?.ok_or_else(|| missing(1))?;
                let permissions = seq.next_element()?.ok_or_else(|| missing(2))?;
                Ok(Change::Put {
                    data: data.into_vec(),
                    permissions,
                })
            }
        }
    }
}

/// All the events of one write request; one log record.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commit {
    /// The request id (for audits).
    pub request_id: String,
    /// Who made the change (`basicauth:…`, `account:…`), if authenticated.
    pub user_id: Option<String>,
    pub events: Vec<Event>,
}

impl Commit {
    pub fn encode(&self) -> Vec<u8> {
        rmp_serde::to_vec_named(self).expect("a Commit always serializes")
    }
    pub fn decode(bytes: &[u8]) -> Result<Commit, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put() -> Change {
        Change::Put {
            data: br#"{"id":"r1","last_modified":7}"#.to_vec(),
            permissions: [("write".to_owned(), vec!["basicauth:u".to_owned()])].into(),
        }
    }

    fn decode(bytes: &[u8]) -> Result<Change, rmp_serde::decode::Error> {
        rmp_serde::from_slice(bytes)
    }

    #[test]
    fn both_forms_round_trip() {
        for change in [put(), Change::Delete] {
            let named = rmp_serde::to_vec_named(&change).unwrap();
            assert_eq!(decode(&named).unwrap(), change);
            let positional = rmp_serde::to_vec(&change).unwrap();
            assert_eq!(decode(&positional).unwrap(), change);
        }
    }

    #[test]
    fn fields_in_any_order_and_unknown_ones_are_read() {
        #[derive(Serialize)]
        struct Reordered {
            permissions: Permissions,
            later_field: Vec<u32>,
            #[serde(with = "serde_bytes")]
            data: Vec<u8>,
            action: &'static str,
        }
        let Change::Put { data, permissions } = put() else {
            unreachable!()
        };
        let bytes = rmp_serde::to_vec_named(&Reordered {
            permissions,
            later_field: vec![1, 2],
            data,
            action: "put",
        })
        .unwrap();
        assert_eq!(decode(&bytes).unwrap(), put());
    }

    #[test]
    fn malformed_changes_are_refused() {
        #[derive(Serialize)]
        struct Tag {
            action: &'static str,
        }
        #[derive(Serialize)]
        struct Twice {
            action: &'static str,
            #[serde(rename = "action")]
            again: &'static str,
        }
        let missing_fields = rmp_serde::to_vec_named(&Tag { action: "put" }).unwrap();
        assert!(decode(&missing_fields).is_err());
        let unknown = rmp_serde::to_vec_named(&Tag { action: "rename" }).unwrap();
        assert!(decode(&unknown).is_err());
        let twice = rmp_serde::to_vec_named(&Twice {
            action: "delete",
            again: "delete",
        })
        .unwrap();
        assert!(decode(&twice).is_err());
        let untagged = rmp_serde::to_vec_named(&BTreeMap::<String, u8>::new()).unwrap();
        assert!(decode(&untagged).is_err());
        assert!(decode(&rmp_serde::to_vec(&Vec::<u8>::new()).unwrap()).is_err());
        assert!(decode(&rmp_serde::to_vec(&42u8).unwrap()).is_err());
    }
}
