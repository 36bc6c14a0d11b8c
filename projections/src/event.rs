//! The events Cairn writes to the log: what changed, by whom, and the full
//! state after the change. One log record holds one [`Commit`]: all the events
//! of one write request, so a request commits or fails as a whole.
//!
//! Encoding: `rmp_serde::to_vec_named` (field names kept, so added fields stay
//! readable); Kinto `data` travels as JSON bytes so numbers are never rewritten
//! by a JSON → MessagePack → JSON round trip.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

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

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
