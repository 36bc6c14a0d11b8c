//! api-core section 4: the inheritance table (4.2) driven as data over
//! HTTP, permission per request (4.3), principals and groups (4.4), the
//! writer rule (4.5) and partial lists (4.6).

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

// ---- 4.2 as a table ---------------------------------------------------------

/// One permission granted on one object of the fixture.
#[derive(Debug, Clone, Copy, PartialEq)]
enum On {
    Bucket,
    Collection,
    Group,
    Record,
}

type Grant = Option<(On, &'static str)>;

const GRANTS: [Grant; 12] = [
    None,
    Some((On::Bucket, "write")),
    Some((On::Bucket, "read")),
    Some((On::Bucket, "collection:create")),
    Some((On::Bucket, "group:create")),
    Some((On::Collection, "write")),
    Some((On::Collection, "read")),
    Some((On::Collection, "record:create")),
    Some((On::Group, "write")),
    Some((On::Group, "read")),
    Some((On::Record, "write")),
    Some((On::Record, "read")),
];

fn has(g: Grant, on: On, perms: &[&str]) -> bool {
    matches!(g, Some((o, p)) if o == on && perms.contains(&p))
}

/// What the grant allows, straight from the table of 4.2.
struct Can {
    bucket_write: bool,

    bucket_get: bool,
    collection_create: bool,
    group_create: bool,
    collection_write: bool,
    collection_get: bool,
    record_create: bool,
    group_write: bool,
    group_read: bool,
    record_write: bool,
    record_read: bool,
}

fn can(g: Grant) -> Can {
    let bw = has(g, On::Bucket, &["write"]);
    let br = bw || has(g, On::Bucket, &["read"]);
    let cw = bw || has(g, On::Collection, &["write"]);
    let cr = br || cw || has(g, On::Collection, &["read"]);
    let gw = bw || has(g, On::Group, &["write"]);
    let rw = cw || has(g, On::Record, &["write"]);
    Can {
        bucket_write: bw,

        bucket_get: br || has(g, On::Bucket, &["collection:create", "group:create"]),
        collection_create: bw || has(g, On::Bucket, &["collection:create"]),
        group_create: bw || has(g, On::Bucket, &["group:create"]),
        collection_write: cw,
        collection_get: cr || has(g, On::Collection, &["record:create"]),
        record_create: cw || has(g, On::Collection, &["record:create"]),
        group_write: gw,
        group_read: br || gw || has(g, On::Group, &["read"]),
        record_write: rw,
        record_read: cr || rw || has(g, On::Record, &["read"]),
    }
}

/// How the grantee is named in the ACL.
#[derive(Debug, Clone, Copy)]
enum Via {
    UserId,
    /// A group (in another bucket) of which the grantee is a member.
    Group,
    Authenticated,
}

fn status(ok: bool, yes: u16) -> u16 {
    if ok {
        yes
    } else {
        403
    }
}

/// A list probe: 200 with `visible` ids, or 403.
fn list_case(path: String, user: &User, visible: Option<&[&str]>) -> Case {
    match visible {
        Some(ids) => {
            let data: Vec<Value> = ids.iter().map(|i| json!({"id": i})).collect();
            Case::new("GET", path, Some(user), 200)
                .name_suffix(&format!("sees {ids:?}"))
                .list(data)
        }
        None => Case::new("GET", path, Some(user), 403).errno(121),
    }
}

trait CaseExt {
    fn name_suffix(self, s: &str) -> Case;
    fn list(self, items: Vec<Value>) -> Case;
}
impl CaseExt for Case {
    fn name_suffix(self, suffix: &str) -> Case {
        let n = format!("{} {suffix}", self.name);
        self.name(n)
    }
    /// The response list has exactly these ids (each item checked as a subset).
    fn list(self, items: Vec<Value>) -> Case {
        let n = items.len();
        let c = self.contains(json!({}));
        Case {
            contains: Some(json!({"data": items})),
            ..c
        }
        .name_suffix(&format!("({n} items)"))
    }
}

fn run_matrix(via: Via) {
    let owner = User::fresh("owner");
    let user = User::fresh("grantee");
    let uid = s().userid(&user);
    let principal = match via {
        Via::UserId => uid.clone(),
        Via::Authenticated => "system.Authenticated".to_string(),
        Via::Group => {
            let gb = new_bucket(s(), &owner);
            s().put(
                &format!("/buckets/{gb}/groups/team"),
                &owner,
                json!({"data": {"members": [uid]}}),
            )
            .expect(201);
            format!("/buckets/{gb}/groups/team")
        }
    };
    let mut failures = Vec::new();
    for grant in GRANTS {
        let bid = new_bucket(s(), &owner);
        let b = format!("/buckets/{bid}");
        let c = format!("{b}/collections/c");
        let g = format!("{b}/groups/g");
        let r = format!("{c}/records/r");
        s().put(&c, &owner, json!({})).expect(201);
        s().put(&g, &owner, json!({"data": {"members": []}}))
            .expect(201);
        s().put(&r, &owner, json!({"data": {"v": 1}})).expect(201);
        if let Some((on, perm)) = grant {
            let url = match on {
                On::Bucket => &b,
                On::Collection => &c,
                On::Group => &g,
                On::Record => &r,
            };
            s().patch(url, &owner, json!({"permissions": {perm: [principal]}}))
                .expect(200);
        }
        let k = can(grant);
        let u = Some(&user);
        // Lists: everything when the parent level is readable, else the
        // objects readable through their own ACL, else [] when the caller
        // may create that kind of object, else 403 (4.6).
        // Collections are listed to whoever may GET them (record:create
        // included), as buckets are in `GET /buckets`.
        let collections: Option<&[&str]> = if k.collection_get {
            Some(&["c"])
        } else if k.collection_create {
            Some(&[])
        } else {
            None
        };
        let records: Option<&[&str]> = if k.record_read {
            Some(&["r"])
        } else if k.record_create {
            Some(&[])
        } else {
            None
        };
        let groups: Option<&[&str]> = if k.group_read {
            Some(&["g"])
        } else if k.group_create {
            Some(&[])
        } else {
            None
        };
        let cases = vec![
            Case::new("GET", b.clone(), u, status(k.bucket_get, 200)),
            Case::new("HEAD", b.clone(), u, status(k.bucket_get, 200)),
            list_case(format!("{b}/collections"), &user, collections),
            Case::new("GET", c.clone(), u, status(k.collection_get, 200)),
            list_case(format!("{c}/records"), &user, records),
            Case::new("GET", r.clone(), u, status(k.record_read, 200)),
            list_case(format!("{b}/groups"), &user, groups),
            Case::new("GET", g.clone(), u, status(k.group_read, 200)),
            // Writes, the destructive ones last.
            Case::new("PATCH", r.clone(), u, status(k.record_write, 200))
                .body(json!({"data": {"v": 2}})),
            Case::new(
                "PUT",
                format!("{c}/records/new"),
                u,
                status(k.record_create, 201),
            )
            .body(json!({})),
            Case::new(
                "POST",
                format!("{c}/records"),
                u,
                status(k.record_create, 201),
            )
            .body(json!({})),
            Case::new("PATCH", c.clone(), u, status(k.collection_write, 200))
                .body(json!({"data": {"x": 1}})),
            Case::new("PATCH", g.clone(), u, status(k.group_write, 200))
                .body(json!({"data": {"members": []}})),
            Case::new(
                "PUT",
                format!("{b}/collections/new"),
                u,
                status(k.collection_create, 201),
            )
            .body(json!({})),
            Case::new(
                "PUT",
                format!("{b}/groups/new"),
                u,
                status(k.group_create, 201),
            )
            .body(json!({})),
            Case::new("PATCH", b.clone(), u, status(k.bucket_write, 200))
                .body(json!({"data": {"x": 1}})),
            Case::new("DELETE", r.clone(), u, status(k.record_write, 200)),
            Case::new("DELETE", g.clone(), u, status(k.group_write, 200)),
            Case::new("DELETE", c.clone(), u, status(k.collection_write, 200)),
            Case::new("DELETE", b.clone(), u, status(k.bucket_write, 200)),
        ];
        for case in cases {
            let name = format!("{via:?} {grant:?}: {}", case.name);
            if let Err(e) = case.clone().name(name).check(s()) {
                failures.push(e);
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

#[test]
fn inheritance_table_granted_to_a_user_id() {
    run_matrix(Via::UserId);
}

#[test]
fn inheritance_table_granted_to_a_group() {
    run_matrix(Via::Group);
}

#[test]
fn inheritance_table_granted_to_authenticated() {
    run_matrix(Via::Authenticated);
}

#[test]
fn everyone_grants_anonymous_access() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    s().put(
        &format!("{records}/pub"),
        &owner,
        json!({"data": {"v": 1}, "permissions": {"read": ["system.Everyone"]}}),
    )
    .expect(201);
    s().put(
        &format!("{records}/priv"),
        &owner,
        json!({"data": {"v": 2}}),
    )
    .expect(201);
    let anon = |m: &str, p: &str| s().req(m, p).send();
    assert_eq!(
        anon("GET", &format!("{records}/pub")).expect(200).json()["permissions"],
        json!({})
    );
    assert_401(&anon("GET", &format!("{records}/priv")));
    // The list shows the shared record only.
    assert_eq!(ids(&anon("GET", &records).expect(200).json()), vec!["pub"]);
    // Reading is not writing.
    assert_401(
        &s().req("PATCH", &format!("{records}/pub"))
            .json(&json!({"data": {}}))
            .send(),
    );
    assert_401(&anon("GET", &format!("/buckets/{bid}")));

    // Collection readable by everyone: anonymous sees everything in it, and
    // a missing record is a 404.
    s().patch(
        &format!("/buckets/{bid}/collections/c"),
        &owner,
        json!({"permissions": {"read": ["system.Everyone"]}}),
    )
    .expect(200);
    let mut seen = ids(&anon("GET", &records).expect(200).json());
    seen.sort();
    assert_eq!(seen, vec!["priv", "pub"]);
    assert_404(&anon("GET", &format!("{records}/nope")), "nope", "record");

    // Everyone may write a record: anonymous can update it.
    s().patch(
        &format!("{records}/priv"),
        &owner,
        json!({"permissions": {"write": ["system.Everyone"]}}),
    )
    .expect(200);
    s().req("PATCH", &format!("{records}/priv"))
        .json(&json!({"data": {"v": 3}}))
        .send()
        .expect(200);
    assert_eq!(s().get(&format!("{records}/priv"), &owner).data()["v"], 3);
}

// ---- 4.3 ---------------------------------------------------------------------

#[test]
fn permission_needed_per_request() {
    let owner = User::fresh("owner");
    let creator = User::fresh("creator");
    let reader = User::fresh("reader");
    let stranger = User::fresh("stranger");
    let (bid, records) = new_collection(s(), &owner);
    let cid = s().userid(&creator);
    let rid = s().userid(&reader);
    s().patch(
        &format!("/buckets/{bid}/collections/c"),
        &owner,
        json!({"permissions": {"record:create": [cid], "read": [rid]}}),
    )
    .expect(200);
    s().put(&format!("{records}/r1"), &owner, json!({"data": {"v": 1}}))
        .expect(201);
    let r1 = format!("{records}/r1");
    let missing = format!("{records}/missing");
    run_cases(
        s(),
        &[
            // PUT of an existing object needs write on it.
            Case::new("PUT", r1.clone(), Some(&creator), 403)
                .body(json!({"data": {"v": 9}}))
                .errno(121),
            // PUT of a missing object needs create on the parent.
            Case::new("PUT", format!("{records}/mine"), Some(&creator), 201).body(json!({})),
            Case::new("PUT", format!("{records}/theirs"), Some(&reader), 403)
                .body(json!({}))
                .errno(121),
            // PATCH/DELETE of a missing object: 404 for who can read the
            // parent, 403 for others.
            Case::new("PATCH", missing.clone(), Some(&reader), 404)
                .body(json!({"data": {}}))
                .errno(110),
            Case::new("DELETE", missing.clone(), Some(&reader), 404).errno(110),
            Case::new("PATCH", missing.clone(), Some(&stranger), 403)
                .body(json!({"data": {}}))
                .errno(121),
            Case::new("DELETE", missing.clone(), Some(&stranger), 403).errno(121),
            Case::new("GET", missing.clone(), Some(&stranger), 403).errno(121),
            Case::new("GET", missing.clone(), Some(&reader), 404).errno(110),
            // Existing, readable, but not writable.
            Case::new("PATCH", r1.clone(), Some(&reader), 403)
                .body(json!({"data": {}}))
                .errno(121),
            Case::new("DELETE", r1.clone(), Some(&reader), 403).errno(121),
            // The creator may write what it created.
            Case::new("PATCH", format!("{records}/mine"), Some(&creator), 200)
                .body(json!({"data": {"v": 2}})),
            Case::new("DELETE", format!("{records}/mine"), Some(&creator), 200),
        ],
    );
    assert_eq!(s().get(&r1, &owner).data()["v"], 1);
}

// ---- 4.4 ---------------------------------------------------------------------

#[test]
fn principals_of_a_request() {
    let owner = User::fresh("owner");
    let member = User::fresh("member");
    let mid = s().userid(&member);
    let b1 = new_bucket(s(), &owner);
    let b2 = new_bucket(s(), &owner);
    s().put(
        &format!("/buckets/{b1}/groups/g1"),
        &owner,
        json!({"data": {"members": [mid]}}),
    )
    .expect(201);
    s().put(
        &format!("/buckets/{b2}/groups/g2"),
        &owner,
        json!({"data": {"members": ["x", mid]}}),
    )
    .expect(201);
    s().put(
        &format!("/buckets/{b2}/groups/other"),
        &owner,
        json!({"data": {"members": ["x"]}}),
    )
    .expect(201);
    let root = s().get("/", &member).expect(200).json();
    let principals: Vec<String> = root["user"]["principals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect();
    // Other tests' groups made of `system.Authenticated` may show up too:
    // check what this test controls.
    let mut plain: Vec<&str> = principals
        .iter()
        .filter(|p| !p.starts_with("/buckets/"))
        .map(|p| p.as_str())
        .collect();
    plain.sort();
    assert_eq!(
        plain,
        vec![mid.as_str(), "system.Authenticated", "system.Everyone"]
    );
    assert!(
        principals.contains(&format!("/buckets/{b1}/groups/g1")),
        "{root}"
    );
    assert!(
        principals.contains(&format!("/buckets/{b2}/groups/g2")),
        "{root}"
    );
    assert!(
        !principals.contains(&format!("/buckets/{b2}/groups/other")),
        "{root}"
    );
    let unique: std::collections::HashSet<&String> = principals.iter().collect();
    assert_eq!(unique.len(), principals.len(), "no duplicates: {root}");
    assert_eq!(root["user"]["id"], json!(mid));
    // Anonymous: no user block.
    let anon = s().req("GET", "/").send().expect(200).json();
    assert!(anon.get("user").is_none(), "{anon}");
}

#[test]
fn group_membership_takes_effect_immediately() {
    let owner = User::fresh("owner");
    let friend = User::fresh("friend");
    let fid = s().userid(&friend);
    let (bid, records) = new_collection(s(), &owner);
    let group = format!("/buckets/{bid}/groups/friends");
    let r1 = format!("{records}/r1");
    s().put(&group, &owner, json!({"data": {"members": []}}))
        .expect(201);
    s().put(
        &r1,
        &owner,
        json!({"data": {"v": 1}, "permissions": {"read": [group.clone()]}}),
    )
    .expect(201);
    assert_403(&s().get(&r1, &friend));

    s().patch(&group, &owner, json!({"data": {"members": [fid]}}))
        .expect(200);
    s().get(&r1, &friend).expect(200);
    s().patch(&group, &owner, json!({"data": {"members": []}}))
        .expect(200);
    assert_403(&s().get(&r1, &friend));
    s().put(&group, &owner, json!({"data": {"members": [fid]}}))
        .expect(200);
    s().get(&r1, &friend).expect(200);

    // Deleting the group removes the membership, not the ACL entry.
    s().delete(&group, &owner).expect(200);
    assert_403(&s().get(&r1, &friend));
    assert_perms(
        &s().get(&r1, &owner),
        json!({"read": [group], "write": [s().userid(&owner)]}),
    );
    let root = s().get("/", &friend).json();
    assert!(
        !root["user"]["principals"]
            .as_array()
            .unwrap()
            .contains(&json!(group)),
        "{root}"
    );
    // Re-creating it restores access through the surviving ACL entry.
    s().put(&group, &owner, json!({"data": {"members": [fid]}}))
        .expect(201);
    s().get(&r1, &friend).expect(200);
}

#[test]
fn group_members_validation() {
    let owner = User::fresh("owner");
    let anyone = User::fresh("anyone");
    let (bid, records) = new_collection(s(), &owner);
    let group = format!("/buckets/{bid}/groups/g");
    for bad in ["system.Everyone", "/buckets/x/groups/y"] {
        let resp = s().put(&group, &owner, json!({"data": {"members": [bad]}}));
        let d = format!("'{bad}' is not a valid user ID.");
        assert_eq!(
            (resp.status, resp.json()),
            (
                400,
                json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                       "message": format!("data.members.0 in body: {d}"),
                       "details": [{"location": "body", "name": "data.members.0", "description": d}]})
            ),
            "{resp}"
        );
    }
    let resp = s().put(&group, &owner, json!({"data": {"members": "x"}}));
    assert_eq!(resp.json()["details"][0]["name"], "data.members", "{resp}");
    assert_400(&resp);
    assert_400(&s().put(&group, &owner, json!({"data": {"members": [1]}})));

    // Duplicates are kept.
    let resp = s()
        .put(&group, &owner, json!({"data": {"members": ["a", "a"]}}))
        .expect(201);
    assert_eq!(resp.data()["members"], json!(["a", "a"]));
    // system.Authenticated is accepted: every authenticated user is a member.
    s().put(
        &group,
        &owner,
        json!({"data": {"members": ["system.Authenticated"]}}),
    )
    .expect(200);
    s().put(
        &format!("{records}/r"),
        &owner,
        json!({"permissions": {"read": [group.clone()]}}),
    )
    .expect(201);
    s().get(&format!("{records}/r"), &anyone).expect(200);
    assert!(s().get("/", &anyone).json()["user"]["principals"]
        .as_array()
        .unwrap()
        .contains(&json!(group)));
}

#[test]
fn principals_in_acls_are_stored_as_given() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let odd = [
        "whatever:123",
        "not a principal",
        "/buckets/nope/groups/none",
        "system.Authenticated",
    ];
    let resp = s()
        .put(
            &format!("{records}/r"),
            &owner,
            json!({"permissions": {"read": odd}}),
        )
        .expect(201);
    assert_perms(&resp, json!({"read": odd, "write": [s().userid(&owner)]}));
}

// ---- 4.5 ---------------------------------------------------------------------

#[test]
fn writer_rule() {
    let owner = User::fresh("owner");
    let other = User::fresh("other");
    let (bid, records) = new_collection(s(), &owner);
    let (oid, xid) = (s().userid(&owner), s().userid(&other));
    let url = format!("{records}/r");
    s().put(&url, &owner, json!({})).expect(201);
    // The owner cannot drop itself from write.
    let resp = s()
        .patch(&url, &owner, json!({"permissions": {"write": [xid]}}))
        .expect(200);
    assert_perms(&resp, json!({"write": [xid, oid]}));
    // PUT without write: write is the caller.
    let resp = s()
        .put(
            &url,
            &other,
            json!({"permissions": {"read": ["system.Authenticated"]}}),
        )
        .expect(200);
    assert_perms(
        &resp,
        json!({"read": ["system.Authenticated"], "write": [xid]}),
    );
    // ... so the previous owner lost its direct write but keeps the
    // inherited one (bucket writer) and becomes a writer again by writing.
    let resp = s()
        .patch(&url, &owner, json!({"data": {"v": 1}}))
        .expect(200);
    assert_perms(
        &resp,
        json!({"read": ["system.Authenticated"], "write": [xid, oid]}),
    );
    // Every kind of object, every write method.
    for (m, u, body) in [
        (
            "PUT",
            format!("/buckets/{bid}/groups/g"),
            json!({"permissions": {"write": []}}),
        ),
        (
            "PATCH",
            format!("/buckets/{bid}/groups/g"),
            json!({"permissions": {"write": []}}),
        ),
        (
            "PATCH",
            format!("/buckets/{bid}/collections/c"),
            json!({"permissions": {"write": []}}),
        ),
        (
            "PATCH",
            format!("/buckets/{bid}"),
            json!({"permissions": {"write": []}}),
        ),
        (
            "POST",
            records.clone(),
            json!({"permissions": {"write": []}}),
        ),
    ] {
        let resp = s().req(m, &u).user(&owner).json(&body).send();
        assert!(resp.status == 200 || resp.status == 201, "{resp}");
        assert_perms(&resp, json!({"write": [oid]}));
    }
}

// ---- 4.6 ---------------------------------------------------------------------

#[test]
fn partial_lists_count_and_delete_only_what_is_allowed() {
    let owner = User::fresh("owner");
    let user = User::fresh("user");
    let uid = s().userid(&user);
    let (_, records) = new_collection(s(), &owner);
    s().put(
        &format!("{records}/mine-r"),
        &owner,
        json!({"permissions": {"read": [uid]}}),
    )
    .expect(201);
    s().put(
        &format!("{records}/mine-w"),
        &owner,
        json!({"permissions": {"write": [uid]}}),
    )
    .expect(201);
    s().put(&format!("{records}/hidden"), &owner, json!({}))
        .expect(201);

    let full = s().get(&records, &owner).expect(200);
    let part = s().get(&records, &user).expect(200);
    assert_eq!(
        ids(&part.json()),
        vec!["mine-w", "mine-r"],
        "newest first, visible only"
    );
    // A filtered list carries the whole list's timestamp.
    assert_eq!(part.etag(), full.etag());
    let head = s().head(&records, &user).expect(200);
    assert_eq!(head.header("Total-Objects"), Some("2"), "{head}");
    assert_eq!(
        s().head(&records, &owner).header("Total-Objects"),
        Some("3")
    );

    // Bulk DELETE deletes only what the caller may write.
    let resp = s().delete(&records, &user).expect(200);
    let deleted: Vec<Value> = resp.data().as_array().unwrap().clone();
    assert_eq!(deleted.len(), 1, "{resp}");
    assert_eq!(deleted[0]["id"], "mine-w");
    assert_eq!(deleted[0]["deleted"], true);
    let mut left = ids(&s().get(&records, &owner).json());
    left.sort();
    assert_eq!(left, vec!["hidden", "mine-r"]);
}

#[test]
fn list_falls_back_to_empty_then_403() {
    let owner = User::fresh("owner");
    let creator = User::fresh("creator");
    let stranger = User::fresh("stranger");
    let (bid, records) = new_collection(s(), &owner);
    s().put(&format!("{records}/r"), &owner, json!({}))
        .expect(201);
    s().patch(
        &format!("/buckets/{bid}/collections/c"),
        &owner,
        json!({"permissions": {"record:create": [s().userid(&creator)]}}),
    )
    .expect(200);
    assert_eq!(
        s().get(&records, &creator).expect(200).json(),
        json!({"data": []})
    );
    let head = s().head(&records, &creator).expect(200);
    assert_eq!(head.header("Total-Objects"), Some("0"));
    assert_eq!(
        s().delete(&records, &creator).expect(200).json(),
        json!({"data": []})
    );
    assert_403(&s().get(&records, &stranger));
    assert_eq!(s().head(&records, &stranger).status, 403);
    assert_403(&s().delete(&records, &stranger));
    assert_401(&s().req("GET", &records).send());
    // Creating makes the creator see its own records.
    s().post(&records, &creator, json!({"data": {"id": "own"}}))
        .expect(201);
    assert_eq!(ids(&s().get(&records, &creator).json()), vec!["own"]);
    assert_eq!(
        s().get(&format!("{records}/r"), &owner).status,
        200,
        "the bulk DELETE removed nothing"
    );
}

#[test]
fn bucket_list_is_partial_with_the_server_wide_timestamp() {
    let owner = User::fresh("owner");
    let other = User::fresh("other");
    let bid = new_bucket(s(), &owner);
    let before = s().get("/buckets", &other).expect(200);
    let mine = s().get("/buckets", &owner).expect(200);
    let after = s().get("/buckets", &other).expect(200);
    assert!(ids(&mine.json()).contains(&bid));
    assert!(!ids(&after.json()).contains(&bid));
    assert!(before.etag() <= mine.etag() && mine.etag() <= after.etag());
    assert!(mine.etag() >= lm(&s().get(&format!("/buckets/{bid}"), &owner).data()));
    assert_401(&s().req("GET", "/buckets").send());
    // group:create to everyone authenticated makes the bucket object
    // readable and listed for them.
    s().patch(
        &format!("/buckets/{bid}"),
        &owner,
        json!({"permissions": {"group:create": ["system.Authenticated"]}}),
    )
    .expect(200);
    assert!(ids(&s().get("/buckets", &other).json()).contains(&bid));
    s().get(&format!("/buckets/{bid}"), &other).expect(200);
}
