//! The two permission indexes: principal → objects (whose own ACL names the
//! principal) and member → groups (from each group's `data.members`).
//!
//! They answer "what may this user see in this list" and "what are this
//! user's effective principals" with prefix scans, never by scanning
//! objects or groups. Both are derived from the object view: an object's
//! entries are removed using its previous state, then re-added from the new
//! one, so they never outlive the object (delete and cascade included).

use std::collections::{BTreeMap, BTreeSet};

use serde::Deserialize;

use crate::error::ProjectionError;
use crate::event::{ObjectKey, Permissions, Resource};
use crate::keys;
use crate::store::{Overlay, Store};
use crate::values::{decode_perms, encode_perms};

/// Inverts an ACL: `(principal, permission names it is given)`, both
/// sorted and unique. One small vector: a record's ACL is usually one
/// principal with one permission, and this runs for every event applied.
fn by_principal(perms: &Permissions) -> Vec<(&str, Vec<&str>)> {
    let mut pairs: Vec<(&str, &str)> = perms
        .iter()
        .flat_map(|(perm, principals)| principals.iter().map(|p| (p.as_str(), perm.as_str())))
        .collect();
    pairs.sort_unstable();
    pairs.dedup();
    let mut out: Vec<(&str, Vec<&str>)> = Vec::new();
    for (principal, perm) in pairs {
        match out.last_mut() {
            Some((p, names)) if *p == principal => names.push(perm),
            _ => out.push((principal, vec![perm])),
        }
    }
    out
}

/// The string members of a group's data, deduplicated. Lenient on purpose:
/// data the index cannot read yields no entries, both when linking and when
/// unlinking, so the index stays consistent whatever the data holds.
fn members(data: &[u8]) -> BTreeSet<String> {
    #[derive(Deserialize)]
    struct GroupData {
        #[serde(default)]
        members: Option<Vec<serde_json::Value>>,
    }
    match serde_json::from_slice::<GroupData>(data) {
        Ok(GroupData {
            members: Some(list),
        }) => list
            .into_iter()
            .filter_map(|v| {
                if let serde_json::Value::String(s) = v {
                    Some(s)
                } else {
                    None
                }
            })
            .collect(),
        _ => BTreeSet::new(),
    }
}

/// Adds the index entries of a live object.
pub(crate) fn link(ov: &mut Overlay<'_>, key: &ObjectKey, perms: &Permissions, data: &[u8]) {
    for (principal, names) in by_principal(perms) {
        ov.put(keys::acl(principal, key), encode_perms(&names));
    }
    if key.resource == Resource::Group {
        let uri = key.uri();
        for m in members(data) {
            ov.put(keys::mem(&m, &uri), &[][..]);
        }
    }
}

/// Removes the index entries `link` added for this state of the object.
pub(crate) fn unlink(ov: &mut Overlay<'_>, key: &ObjectKey, perms: &Permissions, data: &[u8]) {
    for (principal, _) in by_principal(perms) {
        ov.del(keys::acl(principal, key));
    }
    if key.resource == Resource::Group {
        let uri = key.uri();
        for m in members(data) {
            ov.del(keys::mem(&m, &uri));
        }
    }
}

impl Store {
    /// Objects of one list whose own ACL names any of `principals`: id →
    /// permission names held (sorted, unique). One prefix scan per principal.
    pub(crate) fn objects_for_principals(
        &self,
        principals: &[String],
        parent: &str,
        resource: Resource,
    ) -> Result<BTreeMap<String, Vec<String>>, ProjectionError> {
        let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for principal in principals {
            for item in self
                .views()
                .scan_prefix(keys::acl_list_prefix(principal, parent, resource))
            {
                let (k, v) = item?;
                let (_, obj) = keys::decode_acl(&k)?;
                out.entry(obj.id).or_default().extend(decode_perms(&k, &v)?);
            }
        }
        Ok(out
            .into_iter()
            .map(|(id, perms)| (id, perms.into_iter().collect()))
            .collect())
    }

    /// Every object whose own ACL names `principal`, with the permission
    /// names held, in key order. One prefix scan.
    pub(crate) fn objects_naming(
        &self,
        principal: &str,
    ) -> Result<Vec<(ObjectKey, Vec<String>)>, ProjectionError> {
        let mut out = Vec::new();
        for item in self
            .views()
            .scan_prefix(keys::acl_principal_prefix(principal))
        {
            let (k, v) = item?;
            let (_, obj) = keys::decode_acl(&k)?;
            out.push((obj, decode_perms(&k, &v)?));
        }
        Ok(out)
    }

    /// URIs of the groups whose `members` contain `member`, sorted.
    pub(crate) fn groups_of(&self, member: &str) -> Result<Vec<String>, ProjectionError> {
        let mut out = Vec::new();
        for item in self.views().scan_prefix(keys::mem_prefix(member)) {
            let (k, _) = item?;
            out.push(keys::decode_mem(&k)?.1);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_keeps_strings_only_and_tolerates_junk() {
        let m = members(br#"{"members": ["a", "b", "a", 3, null], "x": 1}"#);
        assert_eq!(m.into_iter().collect::<Vec<_>>(), vec!["a", "b"]);
        assert!(members(br#"{"members": "a"}"#).is_empty());
        assert!(members(b"not json").is_empty());
        assert!(members(b"{}").is_empty());
    }

    #[test]
    fn acl_is_inverted_per_principal() {
        let perms: Permissions = [
            ("write".to_owned(), vec!["u".to_owned(), "v".to_owned()]),
            ("read".to_owned(), vec!["u".to_owned(), "u".to_owned()]),
        ]
        .into();
        let inv = by_principal(&perms);
        assert_eq!(
            inv,
            vec![("u", vec!["read", "write"]), ("v", vec!["write"])]
        );
    }
}
