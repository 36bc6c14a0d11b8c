//! Key layout of the projection store: one keyspace, one short textual
//! prefix per view, then order-preserving binary components.
//!
//! ```text
//! obj/ P R I                → ObjHead  (timestamp, deleted?)            the object view
//! lst/ P R ~ts I            → LiveVal  (log position, ACL, data)       live objects, newest first
//! tmb/ P R ~ts I            → LogPos                                   tombstones, newest first
//! lts/ P R                  → u64      (never removed)                 list timestamps
//! cnt/ P R                  → u64      (live objects; absent when 0)   counts
//! acl/ principal P R I      → [perm]   (the object's own ACL)          principal → objects
//! mem/ member group-uri     → ""                                       member → groups
//! meta/applied              → AppliedMeta                              last applied log record
//! ```
//!
//! `P` is the parent (`""`, `/buckets/b`, `/buckets/b/collections/c`), `R`
//! one resource byte, `I` the object id, `~ts` the bitwise NOT of
//! `last_modified` as 8 big-endian bytes, so that the default order
//! (`-last_modified`) is a *forward* scan, the cheap direction of an
//! ordered store. Ties on a timestamp go by ascending id.
//!
//! Strings are written with `0x00` escaped as `00 FF` and terminated by
//! `00 01` (the FoundationDB tuple trick): byte order equals string order,
//! no id can run into the next component, and a parent is a clean prefix.
//! Because the parent comes first, every entry below `/buckets/b` in `obj/`,
//! `lst/` or `tmb/` sits in two prefix ranges (parent exactly `/buckets/b`,
//! and parent starting with `/buckets/b/`): cascades are prefix scans.
//!
//! An object is in exactly one of `lst/` (live) and `tmb/` (deleted), at
//! its current timestamp: together they are the changes index for
//! `_since`, holding only each object's latest change.

use crate::error::ProjectionError;
use crate::event::{ObjectKey, Resource};

pub(crate) const OBJ: &[u8] = b"obj/";
pub(crate) const LST: &[u8] = b"lst/";
pub(crate) const TMB: &[u8] = b"tmb/";
pub(crate) const LTS: &[u8] = b"lts/";
pub(crate) const CNT: &[u8] = b"cnt/";
pub(crate) const ACL: &[u8] = b"acl/";
pub(crate) const MEM: &[u8] = b"mem/";
pub(crate) const META_APPLIED: &[u8] = b"meta/applied";

/// Terminates a string component; sorts below every escaped byte.
const TERM: [u8; 2] = [0x00, 0x01];
/// Stands for a `0x00` inside a string.
const ESC: [u8; 2] = [0x00, 0xFF];

fn push_escaped(buf: &mut Vec<u8>, s: &str) {
    for &b in s.as_bytes() {
        if b == 0 {
            buf.extend_from_slice(&ESC);
        } else {
            buf.push(b);
        }
    }
}

fn push_str(buf: &mut Vec<u8>, s: &str) {
    push_escaped(buf, s);
    buf.extend_from_slice(&TERM);
}

fn res_byte(r: Resource) -> u8 {
    match r {
        Resource::Bucket => b'b',
        Resource::Collection => b'c',
        Resource::Group => b'g',
        Resource::Record => b'r',
        Resource::Account => b'a',
    }
}

fn res_from(b: u8) -> Option<Resource> {
    Some(match b {
        b'b' => Resource::Bucket,
        b'c' => Resource::Collection,
        b'g' => Resource::Group,
        b'r' => Resource::Record,
        b'a' => Resource::Account,
        _ => return None,
    })
}

/// `tag P R`: the prefix shared by every entry of one list in one view.
pub(crate) fn list_prefix(tag: &[u8], parent: &str, resource: Resource) -> Vec<u8> {
    let mut k = Vec::with_capacity(tag.len() + parent.len() + 4);
    k.extend_from_slice(tag);
    push_str(&mut k, parent);
    k.push(res_byte(resource));
    k
}

pub(crate) fn obj(key: &ObjectKey) -> Vec<u8> {
    let mut k = list_prefix(OBJ, &key.parent, key.resource);
    push_str(&mut k, &key.id);
    k
}

/// `lst/` or `tmb/` key: the list prefix, then `(~ts, id)`, so that a
/// forward scan walks the list newest first.
pub(crate) fn ordered(tag: &[u8], key: &ObjectKey, ts: u64) -> Vec<u8> {
    ordered_at(tag, &key.parent, key.resource, ts, &key.id)
}

/// Where the entries with timestamp `ts` start in a `lst/` or `tmb/` list
/// (entries newer than `ts` sort before it).
pub(crate) fn ts_bound(tag: &[u8], parent: &str, resource: Resource, ts: u64) -> Vec<u8> {
    let mut k = list_prefix(tag, parent, resource);
    k.extend_from_slice(&(!ts).to_be_bytes());
    k
}

/// The exact key of `(ts, id)` in a list (a bound for "after").
pub(crate) fn ordered_at(
    tag: &[u8],
    parent: &str,
    resource: Resource,
    ts: u64,
    id: &str,
) -> Vec<u8> {
    let mut k = ts_bound(tag, parent, resource, ts);
    push_str(&mut k, id);
    k
}

pub(crate) fn acl(principal: &str, key: &ObjectKey) -> Vec<u8> {
    let mut k = acl_list_prefix(principal, &key.parent, key.resource);
    push_str(&mut k, &key.id);
    k
}

/// Every `acl/` entry of one principal, whatever the object.
pub(crate) fn acl_principal_prefix(principal: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(ACL.len() + principal.len() + 2);
    k.extend_from_slice(ACL);
    push_str(&mut k, principal);
    k
}

pub(crate) fn acl_list_prefix(principal: &str, parent: &str, resource: Resource) -> Vec<u8> {
    let mut k = Vec::with_capacity(ACL.len() + principal.len() + parent.len() + 6);
    k.extend_from_slice(ACL);
    push_str(&mut k, principal);
    push_str(&mut k, parent);
    k.push(res_byte(resource));
    k
}

pub(crate) fn mem(member: &str, group_uri: &str) -> Vec<u8> {
    let mut k = mem_prefix(member);
    push_str(&mut k, group_uri);
    k
}

pub(crate) fn mem_prefix(member: &str) -> Vec<u8> {
    let mut k = MEM.to_vec();
    push_str(&mut k, member);
    k
}

/// The two prefixes of a view (`obj/`, `lst/`, `tmb/`) holding every
/// entry below the object at `uri`: its direct children (parent = `uri`)
/// and deeper ones (parent starts with `uri/`). Mirrors Kinto's
/// `parent_id LIKE '{uri}/%'` cascade, on keys.
pub(crate) fn descendant_prefixes(tag: &[u8], uri: &str) -> [Vec<u8>; 2] {
    let mut direct = tag.to_vec();
    push_str(&mut direct, uri);
    let mut deeper = tag.to_vec();
    push_escaped(&mut deeper, uri);
    deeper.push(b'/');
    [direct, deeper]
}

/// The smallest key greater than every key starting with `prefix`, or
/// `None` if there is none (a prefix of only `0xFF` bytes).
pub(crate) fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xFF {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

/// Reads the components of a key back, failing with `Corrupt` on anything
/// this module would not have written.
pub(crate) struct KeyReader<'a> {
    key: &'a [u8],
    rest: &'a [u8],
}

impl<'a> KeyReader<'a> {
    pub(crate) fn new(key: &'a [u8], tag: &[u8]) -> Result<Self, ProjectionError> {
        match key.strip_prefix(tag) {
            Some(rest) => Ok(KeyReader { key, rest }),
            None => Err(ProjectionError::corrupt(key, "unexpected key prefix")),
        }
    }

    fn err(&self, reason: &str) -> ProjectionError {
        ProjectionError::corrupt(self.key, reason)
    }

    pub(crate) fn str(&mut self) -> Result<String, ProjectionError> {
        let mut out = Vec::new();
        let mut i = 0;
        loop {
            match self.rest.get(i) {
                None => return Err(self.err("unterminated string component")),
                Some(0) => match self.rest.get(i + 1) {
                    Some(0x01) => break,
                    Some(0xFF) => {
                        out.push(0);
                        i += 2;
                    }
                    _ => return Err(self.err("bad escape in string component")),
                },
                Some(&b) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        self.rest = &self.rest[i + 2..];
        String::from_utf8(out).map_err(|_| self.err("string component is not UTF-8"))
    }

    pub(crate) fn resource(&mut self) -> Result<Resource, ProjectionError> {
        let (&b, rest) = self
            .rest
            .split_first()
            .ok_or_else(|| self.err("missing resource byte"))?;
        let r = res_from(b).ok_or_else(|| self.err("unknown resource byte"))?;
        self.rest = rest;
        Ok(r)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, ProjectionError> {
        let (head, rest) = self
            .rest
            .split_first_chunk::<8>()
            .ok_or_else(|| self.err("short timestamp"))?;
        self.rest = rest;
        Ok(u64::from_be_bytes(*head))
    }

    pub(crate) fn end(self) -> Result<(), ProjectionError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

pub(crate) fn decode_obj(key: &[u8]) -> Result<ObjectKey, ProjectionError> {
    let mut r = KeyReader::new(key, OBJ)?;
    let parent = r.str()?;
    let resource = r.resource()?;
    let id = r.str()?;
    r.end()?;
    Ok(ObjectKey {
        parent,
        resource,
        id,
    })
}

/// Decodes a `lst/` or `tmb/` key into the object and its timestamp.
pub(crate) fn decode_ordered(tag: &[u8], key: &[u8]) -> Result<(ObjectKey, u64), ProjectionError> {
    let mut r = KeyReader::new(key, tag)?;
    let parent = r.str()?;
    let resource = r.resource()?;
    let ts = !r.u64()?;
    let id = r.str()?;
    r.end()?;
    Ok((
        ObjectKey {
            parent,
            resource,
            id,
        },
        ts,
    ))
}

/// Decodes an `lts/` or `cnt/` key into its list.
pub(crate) fn decode_list(tag: &[u8], key: &[u8]) -> Result<(String, Resource), ProjectionError> {
    let mut r = KeyReader::new(key, tag)?;
    let parent = r.str()?;
    let resource = r.resource()?;
    r.end()?;
    Ok((parent, resource))
}

pub(crate) fn decode_acl(key: &[u8]) -> Result<(String, ObjectKey), ProjectionError> {
    let mut r = KeyReader::new(key, ACL)?;
    let principal = r.str()?;
    let parent = r.str()?;
    let resource = r.resource()?;
    let id = r.str()?;
    r.end()?;
    Ok((
        principal,
        ObjectKey {
            parent,
            resource,
            id,
        },
    ))
}

pub(crate) fn decode_mem(key: &[u8]) -> Result<(String, String), ProjectionError> {
    let mut r = KeyReader::new(key, MEM)?;
    let member = r.str()?;
    let group = r.str()?;
    r.end()?;
    Ok((member, group))
}

/// A readable, lossy rendering of a key for error messages.
pub(crate) fn render(key: &[u8]) -> String {
    let mut s = String::with_capacity(key.len());
    for &b in key {
        if (0x20..0x7F).contains(&b) && b != b'\\' {
            s.push(b as char);
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_keep_their_order_and_never_run_together() {
        let mut words = vec!["", "a", "a\0", "a\0b", "ab", "a/b", "b", "\0", "\u{e9}"];
        words.sort();
        let encoded: Vec<Vec<u8>> = words
            .iter()
            .map(|w| {
                let mut v = Vec::new();
                push_str(&mut v, w);
                v
            })
            .collect();
        let mut sorted = encoded.clone();
        sorted.sort();
        assert_eq!(encoded, sorted, "byte order must equal string order");
        for (w, e) in words.iter().zip(&encoded) {
            let mut full = OBJ.to_vec();
            full.extend_from_slice(e);
            let mut r = KeyReader::new(&full, OBJ).unwrap();
            assert_eq!(r.str().unwrap(), *w);
            r.end().unwrap();
        }
    }

    #[test]
    fn object_keys_round_trip() {
        for key in [
            ObjectKey::bucket("b"),
            ObjectKey::collection("b", "c"),
            ObjectKey::group("b", "g"),
            ObjectKey::record("b", "c", "r\0x"),
            ObjectKey::account("a"),
        ] {
            assert_eq!(decode_obj(&obj(&key)).unwrap(), key);
            assert_eq!(
                decode_ordered(LST, &ordered(LST, &key, 42)).unwrap(),
                (key.clone(), 42)
            );
            assert_eq!(
                decode_acl(&acl("p", &key)).unwrap(),
                ("p".to_owned(), key.clone())
            );
        }
        assert_eq!(
            decode_mem(&mem("u", "/buckets/b/groups/g")).unwrap(),
            ("u".into(), "/buckets/b/groups/g".into())
        );
    }

    #[test]
    fn descendants_of_a_bucket_are_its_two_prefixes_and_nothing_else() {
        let [direct, deeper] = descendant_prefixes(OBJ, "/buckets/b");
        let under = |k: &ObjectKey| {
            let o = obj(k);
            o.starts_with(&direct) || o.starts_with(&deeper)
        };
        assert!(under(&ObjectKey::collection("b", "c")));
        assert!(under(&ObjectKey::group("b", "g")));
        assert!(under(&ObjectKey::record("b", "c", "r")));
        assert!(!under(&ObjectKey::bucket("b")));
        assert!(!under(&ObjectKey::collection("bc", "c")));
        assert!(!under(&ObjectKey::record("bc", "c", "r")));
        assert!(!under(&ObjectKey::collection("a", "b")));
    }

    #[test]
    fn garbage_keys_are_corrupt_not_panics() {
        for bad in [
            &b"obj/"[..],
            b"obj/x",
            b"obj/x\x00\x01",
            b"obj/x\x00\x01z",
            b"obj/x\x00\x01b\x00\x07",
            b"nope",
        ] {
            assert!(
                matches!(decode_obj(bad), Err(ProjectionError::Corrupt { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn ordered_keys_sort_newest_first_then_by_id() {
        let k = |ts, id: &str| ordered(LST, &ObjectKey::record("b", "c", id), ts);
        let mut keys = vec![
            k(1, "a"),
            k(3, "a"),
            k(2, "b"),
            k(2, "a"),
            k(u64::MAX, "z"),
            k(0, "z"),
        ];
        keys.sort();
        assert_eq!(
            keys,
            vec![
                k(u64::MAX, "z"),
                k(3, "a"),
                k(2, "a"),
                k(2, "b"),
                k(1, "a"),
                k(0, "z")
            ]
        );
        assert!(ts_bound(LST, "/buckets/b/collections/c", Resource::Record, 2) < k(2, "a"));
        assert!(ts_bound(LST, "/buckets/b/collections/c", Resource::Record, 2) > k(3, "zzz"));
    }

    #[test]
    fn prefix_end_is_just_above_the_prefix() {
        assert_eq!(prefix_end(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_end(b"a\xff"), Some(b"b".to_vec()));
        assert_eq!(prefix_end(b"\xff\xff"), None);
    }
}
