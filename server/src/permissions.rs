//! Kinto's permission model as data: which permissions each object type
//! has, what grants what (the inheritance table of spec section 4.2), how a
//! `permissions` body is validated, and who gets to see an ACL.
//!
//! The inheritance rules are one const table, [`INHERITANCE`], transcribed
//! from Kinto's `PERMISSIONS_INHERITANCE_TREE`; [`is_allowed`] only looks
//! rows up. The exhaustive test checks every (target, need, granting level,
//! granting permission) combination against the spec's table, written out
//! independently in the test.
//!
//! Storage is not involved: callers hand in the ACLs of the target and its
//! ancestors ([`AclChain`]) and the caller's principals.

use projections::{Permissions, Resource};
use serde_json::Value;

use crate::errors::{python_str, ApiError, InvalidDetail, Location};

/// What a request needs on its target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Read the object's content (and, for buckets and collections, their
    /// children); also the permission behind listing.
    Read,
    /// `GET`/`HEAD` of the bucket or collection object itself, which the
    /// create permissions also grant (Kinto's `read:attributes`). For groups
    /// and records this is the same as [`Need::Read`].
    ReadObject,
    Write,
    /// Create a child of that kind in the target: `Create(Collection)` and
    /// `Create(Group)` on a bucket, `Create(Record)` on a collection.
    /// (Creating buckets is granted by settings: [`can_create_bucket`].)
    Create(Resource),
}

use Need::{Create, Read, ReadObject, Write};
use Resource::{Bucket, Collection, Group, Record};

/// One way of being granted a need: holding `permission` on the object of
/// kind `level` in the target's chain (the target itself or an ancestor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    pub level: Resource,
    pub permission: &'static str,
}

const fn g(level: Resource, permission: &'static str) -> Grant {
    Grant { level, permission }
}

/// Kinto's inheritance table: (target kind, need) → the grants, any one of
/// which suffices. A (target, need) pair not listed is never granted.
pub const INHERITANCE: &[(Resource, Need, &[Grant])] = &[
    (Bucket, Write, &[g(Bucket, "write")]),
    (Bucket, Read, &[g(Bucket, "write"), g(Bucket, "read")]),
    (
        Bucket,
        ReadObject,
        &[
            g(Bucket, "write"),
            g(Bucket, "read"),
            g(Bucket, "collection:create"),
            g(Bucket, "group:create"),
        ],
    ),
    (
        Bucket,
        Create(Collection),
        &[g(Bucket, "write"), g(Bucket, "collection:create")],
    ),
    (
        Bucket,
        Create(Group),
        &[g(Bucket, "write"), g(Bucket, "group:create")],
    ),
    (
        Collection,
        Write,
        &[g(Bucket, "write"), g(Collection, "write")],
    ),
    (
        Collection,
        Read,
        &[
            g(Bucket, "write"),
            g(Bucket, "read"),
            g(Collection, "write"),
            g(Collection, "read"),
        ],
    ),
    (
        Collection,
        ReadObject,
        &[
            g(Bucket, "write"),
            g(Bucket, "read"),
            g(Collection, "write"),
            g(Collection, "read"),
            g(Collection, "record:create"),
        ],
    ),
    (
        Collection,
        Create(Record),
        &[
            g(Bucket, "write"),
            g(Collection, "write"),
            g(Collection, "record:create"),
        ],
    ),
    (Group, Write, &[g(Bucket, "write"), g(Group, "write")]),
    (
        Group,
        Read,
        &[
            g(Bucket, "write"),
            g(Bucket, "read"),
            g(Group, "write"),
            g(Group, "read"),
        ],
    ),
    (
        Group,
        ReadObject,
        &[
            g(Bucket, "write"),
            g(Bucket, "read"),
            g(Group, "write"),
            g(Group, "read"),
        ],
    ),
    (
        Record,
        Write,
        &[
            g(Bucket, "write"),
            g(Collection, "write"),
            g(Record, "write"),
        ],
    ),
    (
        Record,
        Read,
        &[
            g(Bucket, "write"),
            g(Bucket, "read"),
            g(Collection, "write"),
            g(Collection, "read"),
            g(Record, "write"),
            g(Record, "read"),
        ],
    ),
    (
        Record,
        ReadObject,
        &[
            g(Bucket, "write"),
            g(Bucket, "read"),
            g(Collection, "write"),
            g(Collection, "read"),
            g(Record, "write"),
            g(Record, "read"),
        ],
    ),
];

/// The ACLs of the target object and its ancestors that exist (None = absent).
#[derive(Debug, Default, Clone, Copy)]
pub struct AclChain<'a> {
    pub bucket: Option<&'a Permissions>,
    pub collection: Option<&'a Permissions>,
    pub group: Option<&'a Permissions>,
    pub record: Option<&'a Permissions>,
}

impl<'a> AclChain<'a> {
    fn level(&self, level: Resource) -> Option<&'a Permissions> {
        match level {
            Bucket => self.bucket,
            Collection => self.collection,
            Group => self.group,
            Record => self.record,
            // Accounts are not in the core chain (see plugins::accounts).
            Resource::Account => None,
        }
    }
}

/// The grants of `need` on a `target`, from [`INHERITANCE`] (empty when the
/// pair makes no sense, e.g. `Create(Record)` on a bucket).
pub fn grants(target: Resource, need: Need) -> &'static [Grant] {
    INHERITANCE
        .iter()
        .find(|(t, n, _)| *t == target && *n == need)
        .map_or(&[], |(_, _, grants)| grants)
}

/// Is `need` on `target` (the resource kind the request addresses) granted to any of `principals` by the chain?
pub fn is_allowed(chain: &AclChain, target: Resource, need: Need, principals: &[String]) -> bool {
    grants(target, need).iter().any(|grant| {
        chain
            .level(grant.level)
            .is_some_and(|acl| holds(acl, grant.permission, principals))
    })
}

/// Does one of `principals` appear in `acl[permission]`?
fn holds(acl: &Permissions, permission: &str, principals: &[String]) -> bool {
    acl.get(permission)
        .is_some_and(|listed| listed.iter().any(|p| principals.contains(p)))
}

/// May one of `principals` create buckets? (`bucket:create` exists only in
/// the settings: `bucket_create_principals`.)
pub fn can_create_bucket(bucket_create_principals: &[String], principals: &[String]) -> bool {
    bucket_create_principals
        .iter()
        .any(|p| principals.contains(p))
}

/// Permission names accepted in a `permissions` body for that resource (4.1), in the order Kinto lists them in error messages.
pub fn allowed_permission_names(resource: Resource) -> &'static [&'static str] {
    match resource {
        Bucket => &["read", "write", "collection:create", "group:create"],
        Collection => &["read", "write", "record:create"],
        Group | Record | Resource::Account => &["read", "write"],
    }
}

/// Validates a `permissions` JSON value from a request body, with the
/// reference's error bodies (400, errno 107, location `body`):
///
/// * not an object → `permissions`: `"x" is not a mapping type: Does not implement dict-like functionality.`;
/// * the first unknown name, in body order → `permissions`: `"bogus" is not one of read, write`;
/// * then every bad value, in [`allowed_permission_names`] order:
///   not an array → `permissions.read`: `"x" is not iterable`;
///   an empty or false element (`""`, `null`, `0`, `[]`…) → `permissions.read.3`: `Required`;
///   another non-string → `permissions.read.0`: `1 is not a string: {'': ''}`.
///
/// The returned map holds every name that was sent, including those sent
/// as `[]` or `null` (both mean "no principals": PATCH empties that type,
/// merge-patch removes it). Principals keep their order, duplicates
/// dropped (Kinto stores sets). Principals are not validated otherwise.
pub fn parse_permissions(resource: Resource, value: &Value) -> Result<Permissions, ApiError> {
    let Value::Object(map) = value else {
        let description = format!(
            "\"{}\" is not a mapping type: Does not implement dict-like functionality.",
            python_str(value)
        );
        return Err(ApiError::invalid(
            Location::Body,
            Some("permissions"),
            description,
        ));
    };
    let allowed = allowed_permission_names(resource);
    if let Some(unknown) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
        let description = format!("\"{unknown}\" is not one of {}", allowed.join(", "));
        return Err(ApiError::invalid(
            Location::Body,
            Some("permissions"),
            description,
        ));
    }

    let mut parsed = Permissions::new();
    let mut errors = Vec::new();
    for &name in allowed {
        let Some(principals) = map.get(name) else {
            continue;
        };
        match principals {
            Value::Null => {
                parsed.insert(name.to_owned(), Vec::new());
            }
            Value::Array(items) => {
                let mut list: Vec<String> = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) if !s.is_empty() => {
                            if !list.contains(s) {
                                list.push(s.clone());
                            }
                        }
                        item if is_python_falsy(item) => {
                            errors.push(InvalidDetail::new(
                                Location::Body,
                                Some(&format!("permissions.{name}.{i}")),
                                "Required",
                            ));
                        }
                        item => {
                            let description =
                                format!("{} is not a string: {{'': ''}}", python_str(item));
                            errors.push(InvalidDetail::new(
                                Location::Body,
                                Some(&format!("permissions.{name}.{i}")),
                                description,
                            ));
                        }
                    }
                }
                parsed.insert(name.to_owned(), list);
            }
            other => {
                let description = format!("\"{}\" is not iterable", python_str(other));
                errors.push(InvalidDetail::new(
                    Location::Body,
                    Some(&format!("permissions.{name}")),
                    description,
                ));
            }
        }
    }
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::invalid_details(errors))
    }
}

/// Python's truthiness of a JSON value: `None`, `False`, zero and empty
/// containers are false.
fn is_python_falsy(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Bool(b) => !b,
        Value::Number(n) => n.as_f64() == Some(0.0),
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
    }
}

/// Who sees permissions: true iff one of principals is listed directly in the object's own "write".
pub fn shows_permissions(acl: &Permissions, principals: &[String]) -> bool {
    holds(acl, "write", principals)
}

/// The writer rule (spec 4.5): every create or update adds the caller's
/// user id to the object's `write` list (at the end, if not there yet).
pub fn add_writer(acl: &mut Permissions, user_id: &str) {
    let writers = acl.entry("write".to_owned()).or_default();
    if !writers.iter().any(|w| w == user_id) {
        writers.push(user_id.to_owned());
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const ALL_RESOURCES: [Resource; 4] = [Bucket, Collection, Group, Record];
    const ALL_NEEDS: [Need; 7] = [
        Read,
        ReadObject,
        Write,
        Create(Bucket),
        Create(Collection),
        Create(Group),
        Create(Record),
    ];
    const ALL_PERMISSIONS: [&str; 8] = [
        "read",
        "write",
        "collection:create",
        "group:create",
        "record:create",
        "bucket:create",
        "read:attributes",
        "bogus",
    ];

    /// Spec api-core.md 4.2, copied as text ("object" = the GET/HEAD of the
    /// object itself). Groups and records have no such row: reading the
    /// object is `read` (Kinto falls back from `read:attributes` to `read`),
    /// which the last two lines spell out.
    const SPEC_TABLE: &str = "
        bucket write              | bucket write
        bucket read               | bucket write, read
        bucket object             | bucket write, read, collection:create, group:create
        bucket collection:create  | bucket write, collection:create
        bucket group:create       | bucket write, group:create
        collection write          | bucket write; collection write
        collection read           | bucket write, read; collection write, read
        collection object         | bucket write, read; collection write, read, record:create
        collection record:create  | bucket write; collection write, record:create
        group write               | bucket write; group write
        group read                | bucket write, read; group write, read
        record write              | bucket write; collection write; record write
        record read               | bucket write, read; collection write, read; record write, read
        group object              | bucket write, read; group write, read
        record object             | bucket write, read; collection write, read; record write, read
    ";

    fn resource_named(name: &str) -> Resource {
        match name {
            "bucket" => Bucket,
            "collection" => Collection,
            "group" => Group,
            "record" => Record,
            other => panic!("unknown resource {other}"),
        }
    }

    fn need_named(name: &str) -> Need {
        match name {
            "read" => Read,
            "object" => ReadObject,
            "write" => Write,
            "collection:create" => Create(Collection),
            "group:create" => Create(Group),
            "record:create" => Create(Record),
            other => panic!("unknown need {other}"),
        }
    }

    /// (target, need) → set of (level, permission), parsed from SPEC_TABLE.
    /// One row of the spec table: target, need, granting (level, permission) pairs.
    type SpecRow = (Resource, Need, Vec<(Resource, String)>);

    fn spec_expectations() -> Vec<SpecRow> {
        SPEC_TABLE
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(|line| {
                let (lhs, rhs) = line.split_once('|').expect("row");
                let mut lhs = lhs.split_whitespace();
                let target = resource_named(lhs.next().expect("target"));
                let need = need_named(lhs.next().expect("need"));
                let mut grants = Vec::new();
                for part in rhs.split(';') {
                    let (level, perms) = part.trim().split_once(' ').expect("level perms");
                    for perm in perms.split(',') {
                        grants.push((resource_named(level), perm.trim().to_owned()));
                    }
                }
                (target, need, grants)
            })
            .collect()
    }

    fn acl(permission: &str, principals: &[&str]) -> Permissions {
        let mut acl = Permissions::new();
        acl.insert(
            permission.to_owned(),
            principals.iter().map(|p| p.to_string()).collect(),
        );
        acl
    }

    fn chain_with(level: Resource, acl: &Permissions) -> AclChain<'_> {
        let mut chain = AclChain::default();
        match level {
            Bucket => chain.bucket = Some(acl),
            Collection => chain.collection = Some(acl),
            Group => chain.group = Some(acl),
            Record => chain.record = Some(acl),
            Resource::Account => {}
        }
        chain
    }

    #[test]
    fn exhaustive_against_the_spec_table() {
        let spec = spec_expectations();
        assert_eq!(
            spec.len(),
            INHERITANCE.len(),
            "every table row is in the spec and vice versa"
        );
        let me = vec![
            "basicauth:me".to_owned(),
            "system.Authenticated".to_owned(),
            "system.Everyone".to_owned(),
        ];
        let mut checked = 0;
        for target in ALL_RESOURCES {
            for need in ALL_NEEDS {
                let expected = spec
                    .iter()
                    .find(|(t, n, _)| *t == target && *n == need)
                    .map(|(_, _, g)| g);
                for level in ALL_RESOURCES {
                    for permission in ALL_PERMISSIONS {
                        let granted_acl = acl(permission, &["basicauth:me"]);
                        let chain = chain_with(level, &granted_acl);
                        let want =
                            expected.is_some_and(|g| g.contains(&(level, permission.to_owned())));
                        assert_eq!(
                            is_allowed(&chain, target, need, &me),
                            want,
                            "{target:?} {need:?} granted by {level:?} {permission}"
                        );
                        // Same ACL, principal not held: never granted.
                        let other_acl = acl(permission, &["basicauth:other"]);
                        let chain = chain_with(level, &other_acl);
                        assert!(!is_allowed(&chain, target, need, &me));
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 4 * 7 * 4 * 8);
    }

    #[test]
    fn empty_chain_grants_nothing() {
        let everyone = vec!["system.Everyone".to_owned()];
        for target in ALL_RESOURCES {
            for need in ALL_NEEDS {
                assert!(!is_allowed(&AclChain::default(), target, need, &everyone));
            }
        }
    }

    #[test]
    fn any_principal_and_any_grant_suffices() {
        let bucket = acl("read", &["/buckets/b/groups/friends"]);
        let record = acl("write", &["system.Authenticated"]);
        let chain = AclChain {
            bucket: Some(&bucket),
            record: Some(&record),
            ..AclChain::default()
        };
        let member = vec![
            "basicauth:x".to_owned(),
            "/buckets/b/groups/friends".to_owned(),
        ];
        assert!(is_allowed(&chain, Record, Read, &member));
        assert!(!is_allowed(&chain, Record, Write, &member));
        let anonymous = vec!["system.Everyone".to_owned()];
        assert!(!is_allowed(&chain, Record, Read, &anonymous));
        let user = vec!["basicauth:y".to_owned(), "system.Authenticated".to_owned()];
        assert!(is_allowed(&chain, Record, Write, &user));
    }

    #[test]
    fn spec_consequences() {
        let me = vec!["u".to_owned()];
        // group:create to everyone authenticated makes the bucket object readable.
        let bucket = acl("group:create", &["u"]);
        let chain = AclChain {
            bucket: Some(&bucket),
            ..AclChain::default()
        };
        assert!(is_allowed(&chain, Bucket, ReadObject, &me));
        assert!(!is_allowed(&chain, Bucket, Read, &me));
        assert!(is_allowed(&chain, Bucket, Create(Group), &me));
        assert!(!is_allowed(&chain, Bucket, Create(Collection), &me));
        // record:create lets you GET the collection and create, not read others.
        let collection = acl("record:create", &["u"]);
        let chain = AclChain {
            collection: Some(&collection),
            ..AclChain::default()
        };
        assert!(is_allowed(&chain, Collection, ReadObject, &me));
        assert!(is_allowed(&chain, Collection, Create(Record), &me));
        assert!(!is_allowed(&chain, Record, Read, &me));
    }

    #[test]
    fn bucket_creation_from_settings() {
        let settings = vec!["system.Authenticated".to_owned()];
        assert!(can_create_bucket(
            &settings,
            &["basicauth:a".to_owned(), "system.Authenticated".to_owned()]
        ));
        assert!(!can_create_bucket(
            &settings,
            &["system.Everyone".to_owned()]
        ));
        assert!(!can_create_bucket(&[], &["system.Everyone".to_owned()]));
    }

    #[test]
    fn permission_names() {
        assert_eq!(
            allowed_permission_names(Bucket),
            ["read", "write", "collection:create", "group:create"]
        );
        assert_eq!(
            allowed_permission_names(Collection),
            ["read", "write", "record:create"]
        );
        assert_eq!(allowed_permission_names(Group), ["read", "write"]);
        assert_eq!(allowed_permission_names(Record), ["read", "write"]);
    }

    fn err_body(resource: Resource, value: Value) -> Value {
        parse_permissions(resource, &value)
            .expect_err("invalid")
            .body()
    }

    fn one_error(name: &str, description: &str) -> Value {
        json!({"code": 400, "errno": 107, "error": "Invalid parameters",
               "message": format!("{name} in body: {description}"),
               "details": [{"location": "body", "name": name, "description": description}]})
    }

    #[test]
    fn parse_valid_permissions() {
        let parsed = parse_permissions(Record, &json!({"read": ["b", "a", "b"], "write": []}))
            .expect("valid");
        assert_eq!(
            parsed.get("read"),
            Some(&vec!["b".to_owned(), "a".to_owned()])
        );
        assert_eq!(parsed.get("write"), Some(&Vec::new()));
        let parsed = parse_permissions(Collection, &json!({"record:create": null})).expect("valid");
        assert_eq!(parsed.get("record:create"), Some(&Vec::new()));
        assert_eq!(parsed.len(), 1);
        let parsed = parse_permissions(Bucket, &json!({})).expect("valid");
        assert!(parsed.is_empty());
        let parsed = parse_permissions(
            Bucket,
            &json!({"group:create": ["system.Authenticated"], "collection:create": ["x\"y", "é"]}),
        )
        .expect("valid");
        assert_eq!(
            parsed.get("collection:create"),
            Some(&vec!["x\"y".to_owned(), "é".to_owned()])
        );
    }

    #[test]
    fn parse_unknown_names_as_reference() {
        assert_eq!(
            err_body(Record, json!({"bogus": []})),
            one_error("permissions", "\"bogus\" is not one of read, write")
        );
        assert_eq!(
            err_body(Bucket, json!({"bogus": []})),
            one_error(
                "permissions",
                "\"bogus\" is not one of read, write, collection:create, group:create"
            )
        );
        assert_eq!(
            err_body(Collection, json!({"bogus": []})),
            one_error(
                "permissions",
                "\"bogus\" is not one of read, write, record:create"
            )
        );
        // First unknown in body order, before any value error.
        assert_eq!(
            err_body(Record, json!({"read": [1], "bogus": [], "alpha": []})),
            one_error("permissions", "\"bogus\" is not one of read, write")
        );
        assert_eq!(
            err_body(Record, json!({"record:create": []})),
            one_error("permissions", "\"record:create\" is not one of read, write")
        );
    }

    #[test]
    fn parse_non_mapping_as_reference() {
        let mapping = |shown: &str| {
            one_error("permissions", &format!("\"{shown}\" is not a mapping type: Does not implement dict-like functionality."))
        };
        assert_eq!(err_body(Record, json!("x")), mapping("x"));
        assert_eq!(err_body(Record, json!(null)), mapping("None"));
        assert_eq!(err_body(Record, json!(["read"])), mapping("['read']"));
        assert_eq!(err_body(Record, json!(5)), mapping("5"));
    }

    #[test]
    fn parse_bad_values_as_reference() {
        assert_eq!(
            err_body(Record, json!({"read": "x"})),
            one_error("permissions.read", "\"x\" is not iterable")
        );
        assert_eq!(
            err_body(Record, json!({"read": [1]})),
            one_error("permissions.read.0", "1 is not a string: {'': ''}")
        );
        assert_eq!(
            err_body(Record, json!({"read": [""]})),
            one_error("permissions.read.0", "Required")
        );
        assert_eq!(
            err_body(Record, json!({"read": ["b", "a", "b", null]})),
            one_error("permissions.read.3", "Required")
        );
        assert_eq!(
            err_body(Record, json!({"read": ["zz", {"a": 1}]})),
            one_error("permissions.read.1", "{'a': 1} is not a string: {'': ''}")
        );
        assert_eq!(
            err_body(
                Record,
                json!({"read": [{"a": "it's", "b": [null, true, 1e20, "q\"u"]}]})
            ),
            one_error(
                "permissions.read.0",
                "{'a': \"it's\", 'b': [None, True, 1e+20, 'q\"u']} is not a string: {'': ''}"
            )
        );
    }

    #[test]
    fn parse_collects_every_error_as_reference() {
        // Observed on the reference: details in schema order (read, write),
        // message from the first by name.
        let body = err_body(
            Record,
            json!({"write": [1, 2.5, true, false, [1, "a"], {"k": "v"}], "read": [null, "x", 3]}),
        );
        assert_eq!(
            body,
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "permissions.read.0 in body: Required",
                   "details": [
                       {"location": "body", "name": "permissions.read.0", "description": "Required"},
                       {"location": "body", "name": "permissions.read.2", "description": "3 is not a string: {'': ''}"},
                       {"location": "body", "name": "permissions.write.0", "description": "1 is not a string: {'': ''}"},
                       {"location": "body", "name": "permissions.write.1", "description": "2.5 is not a string: {'': ''}"},
                       {"location": "body", "name": "permissions.write.2", "description": "True is not a string: {'': ''}"},
                       {"location": "body", "name": "permissions.write.3", "description": "Required"},
                       {"location": "body", "name": "permissions.write.4", "description": "[1, 'a'] is not a string: {'': ''}"},
                       {"location": "body", "name": "permissions.write.5", "description": "{'k': 'v'} is not a string: {'': ''}"}]})
        );
        let body = err_body(Record, json!({"write": {"a": 1}, "read": 5}));
        assert_eq!(
            body,
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "permissions.read in body: \"5\" is not iterable",
                   "details": [
                       {"location": "body", "name": "permissions.read", "description": "\"5\" is not iterable"},
                       {"location": "body", "name": "permissions.write", "description": "\"{'a': 1}\" is not iterable"}]})
        );
        let body = err_body(Record, json!({"write": true, "read": 1.5}));
        assert_eq!(
            body["details"][1]["description"],
            json!("\"True\" is not iterable")
        );
        assert_eq!(
            body["details"][0]["description"],
            json!("\"1.5\" is not iterable")
        );
    }

    #[test]
    fn who_sees_permissions() {
        let mut object = acl("write", &["basicauth:owner"]);
        object.insert("read".to_owned(), vec!["basicauth:reader".to_owned()]);
        assert!(shows_permissions(&object, &["basicauth:owner".to_owned()]));
        assert!(!shows_permissions(
            &object,
            &["basicauth:reader".to_owned()]
        ));
        assert!(!shows_permissions(
            &Permissions::new(),
            &["basicauth:owner".to_owned()]
        ));
        let by_group = acl("write", &["/buckets/b/groups/g"]);
        assert!(shows_permissions(
            &by_group,
            &["u".to_owned(), "/buckets/b/groups/g".to_owned()]
        ));
    }

    #[test]
    fn writer_rule() {
        let mut object = acl("write", &["other"]);
        add_writer(&mut object, "owner");
        add_writer(&mut object, "owner");
        assert_eq!(
            object.get("write"),
            Some(&vec!["other".to_owned(), "owner".to_owned()])
        );
        let mut empty = Permissions::new();
        add_writer(&mut empty, "owner");
        assert_eq!(empty.get("write"), Some(&vec!["owner".to_owned()]));
    }
}
