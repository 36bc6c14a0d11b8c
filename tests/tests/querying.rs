//! api-core sections 9 to 14 (issue 4): filters (every operator, nested
//! fields, value typing, missing fields), `_sort`, pagination (`_limit`,
//! `paginate_by`, `Next-Page`, a `_token` that stays right while others
//! write), `_fields`, `HEAD` counts and bulk `DELETE` with filters.
//!
//! Expected answers are the reference's (checked against Kinto 26.5.0 with
//! the same data), except where docs/kinto-differences.md says otherwise
//! (`like_`, `has_`, `contains_` follow the spec, not the memory backend).

use std::collections::{BTreeMap, BTreeSet};

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

/// Percent-encodes a query value (the harness sends targets as given).
fn enc(v: &str) -> String {
    let mut out = String::new();
    for b in v.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b',' | b'*' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `a=1&b=x` with every value encoded.
fn query(pairs: &str) -> String {
    pairs
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => format!("{k}={}", enc(v)),
            None => p.to_string(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

/// Records with values of every JSON type, nested objects, a dotted key and
/// fields missing here and there.
fn typed_fixture(owner: &User) -> String {
    let (_, records) = new_collection(s(), owner);
    let rows = [
        json!({"id": "a", "n": 1, "s": "Hello", "tags": ["x", "y"], "o": {"x": 1, "y": {"z": "deep"}}, "b": true}),
        json!({"id": "b", "n": 9, "s": "world", "tags": ["y"], "o": {"x": 2}, "b": false}),
        json!({"id": "c", "n": null, "s": "a*c", "tags": [], "o": {"x": null}}),
        json!({"id": "d", "s": "abc", "q": "7", "due-date": "2026-01-01"}),
        json!({"id": "e", "n": 2.5, "s": "ABD", "q": 7, "dotted.key": 1}),
        json!({"id": "f", "n": "7", "s": "", "tags": ["x", "z"]}),
        json!({"id": "g", "n": true, "s": "x_y%z", "tags": "x"}),
    ];
    for r in rows {
        let id = r["id"].as_str().unwrap().to_string();
        s().put(&format!("{records}/{id}"), owner, json!({"data": r}))
            .expect(201);
    }
    records
}

fn sorted_ids(resp: &Response) -> Vec<String> {
    let mut v = ids(&resp.json());
    v.sort();
    v
}

#[test]
fn every_operator_with_kintos_value_typing() {
    let owner = User::fresh("owner");
    let records = typed_fixture(&owner);
    // (query, ids matching, sorted). Over n: 1, 9, null, missing, 2.5, "7",
    // true — a missing field is above every value.
    let table: &[(&str, &[&str])] = &[
        ("n=1", &["a"]),
        ("eq_n=1", &["a"]),
        ("n=2.5", &["e"]),
        ("n=\"7\"", &["f"]),
        ("n=7", &[]),
        ("n=null", &["c"]),
        ("n=true", &["g"]),
        ("not_n=1", &["b", "c", "d", "e", "f", "g"]),
        ("not_n=null", &["a", "b", "d", "e", "f", "g"]),
        ("lt_n=5", &["a", "c", "e", "f"]),
        ("gt_n=5", &["b", "d", "g"]),
        ("min_n=2.5", &["b", "d", "e", "g"]),
        ("max_n=2.5", &["a", "c", "e", "f"]),
        // A string is below every number: min_ over a string matches them all.
        ("min_n=abc", &["a", "b", "d", "e", "g"]),
        ("lt_n=abc", &["c", "f"]),
        ("in_n=1,9", &["a", "b"]),
        ("in_n=1,\"7\"", &["a", "f"]),
        ("exclude_n=1,9", &["c", "d", "e", "f", "g"]),
        ("q=\"7\"", &["d"]),
        ("q=7", &["e"]),
        ("s=abd", &[]),
        ("s=ABD", &["e"]),
        ("s=", &["f"]),
        ("b=true", &["a"]),
        ("b=1", &[]),
        ("b=false", &["b"]),
        // like_: case-insensitive substring, `*` the only wildcard.
        ("like_s=ab", &["d", "e"]),
        ("like_s=a*c", &["c", "d"]),
        ("like_s=h*o", &["a"]),
        ("like_s=%", &["g"]),
        ("like_s=_", &["g"]),
        ("like_s=.", &[]),
        ("like_s=*", &["a", "b", "c", "d", "e", "f", "g"]),
        // has_: null counts as present; empty means absent.
        ("has_n=true", &["a", "b", "c", "e", "f", "g"]),
        ("has_n=1", &["a", "b", "c", "e", "f", "g"]),
        ("has_n=false", &["d"]),
        ("has_n=0", &["d"]),
        ("has_n=", &["d"]),
        // contains_: JSON values, arrays only.
        ("contains_tags=[\"x\"]", &["a", "f"]),
        ("contains_tags=[\"x\",\"y\"]", &["a"]),
        ("contains_tags=x", &["a", "f"]),
        ("contains_tags=x,y", &[]),
        ("contains_tags=[]", &["a", "b", "c", "f"]),
        ("contains_any_tags=[\"z\",\"y\"]", &["a", "b", "f"]),
        ("contains_any_tags=[]", &[]),
        ("contains_s=[\"a\"]", &[]),
        // Nested fields, a key holding a dot, names that are not [\w.]+.
        ("o.x=1", &["a"]),
        ("min_o.x=2", &["b", "d", "e", "f", "g"]),
        ("o.x=null", &["c"]),
        ("has_o.y=true", &["a"]),
        ("o.y.z=deep", &["a"]),
        ("has_o.y.z=false", &["b", "c", "d", "e", "f", "g"]),
        ("dotted.key=1", &["e"]),
        ("due-date=2026-01-01", &["d"]),
        ("min_due-date=x", &[]),
        // ids.
        ("id=a", &["a"]),
        ("not_id=a", &["b", "c", "d", "e", "f", "g"]),
        ("in_id=a,c,zz", &["a", "c"]),
        ("exclude_id=a,b", &["c", "d", "e", "f", "g"]),
        ("like_id=a", &["a"]),
        // Filters are ANDed, has_ included (the memory backend's has_
        // overrode the filters before it).
        ("n=1&has_b=true", &["a"]),
        ("has_b=true&not_n=1", &["b"]),
        ("like_s=*o*&lt_n=5", &["a"]),
        // Unknown fields and ignored parameters.
        ("unknown=1", &[]),
        ("_foo=1", &["a", "b", "c", "d", "e", "f", "g"]),
    ];
    let mut failures = Vec::new();
    for (q, want) in table {
        let resp = s()
            .get(&format!("{records}?{}", query(q)), &owner)
            .expect(200);
        let got = sorted_ids(&resp);
        if got != *want {
            failures.push(format!("{q}: expected {want:?}, got {got:?}"));
        }
        // HEAD counts the same objects.
        let head = s().head(&format!("{records}?{}", query(q)), &owner);
        if head.header("Total-Objects") != Some(want.len().to_string().as_str()) {
            failures.push(format!("HEAD {q}: Total-Objects\n{head}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn filters_on_timestamps_and_tombstones() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let mut ts = Vec::new();
    for i in 0..4 {
        let r = s()
            .put(
                &format!("{records}/r{i}"),
                &owner,
                json!({"data": {"i": i}}),
            )
            .expect(201);
        ts.push(lm(&r.data()));
    }
    let del = s().delete(&format!("{records}/r0"), &owner).expect(200);
    let t_del = lm(&del.data());
    let list = |q: &str| {
        s().get(&format!("{records}?{q}"), &owner)
            .expect(200)
            .json()
    };
    assert_eq!(ids(&list(&format!("last_modified={}", ts[1]))), ["r1"]);
    assert_eq!(
        ids(&list(&format!("in_last_modified={},{}", ts[2], ts[3]))),
        ["r3", "r2"]
    );
    // Any filter on last_modified shows tombstones.
    assert_eq!(
        list(&format!("gt_last_modified={}", ts[3]))["data"],
        json!([{"id": "r0", "last_modified": t_del, "deleted": true}])
    );
    assert_eq!(
        ids(&list(&format!(
            "min_last_modified={}&_sort=last_modified",
            ts[2]
        ))),
        ["r2", "r3", "r0"]
    );
    // HEAD counts objects, not tombstones.
    let head = s().head(&format!("{records}?_since={}", ts[0]), &owner);
    assert_eq!(head.header("Total-Objects"), Some("3"), "{head}");
    assert_eq!(head.header("Total-Records"), Some("3"), "{head}");
}

#[test]
fn invalid_filters_are_400_with_exact_bodies() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let invalid = |name: &str, description: &str, message: &str| {
        json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
               "details": [{"location": "querystring", "name": name, "description": description}]})
    };
    let cases = [
        (
            "like_s=123",
            invalid(
                "like_s",
                "Invalid value for like_s",
                "Invalid value for like_s",
            ),
        ),
        (
            "in_id=1,2",
            invalid(
                "in_id",
                "Invalid value for in_id",
                "Invalid value for in_id",
            ),
        ),
        (
            "exclude_id=a,3",
            invalid(
                "exclude_id",
                "Invalid value for exclude_id",
                "Invalid value for exclude_id",
            ),
        ),
        (
            "in_last_modified=1,abc",
            invalid(
                "in_last_modified",
                "Invalid value for in_last_modified",
                "Invalid value for in_last_modified",
            ),
        ),
        (
            "gt_last_modified=abc",
            invalid(
                "gt_last_modified",
                "Invalid value for gt_last_modified",
                "Invalid value for gt_last_modified",
            ),
        ),
        (
            "contains_id=a",
            invalid(
                "contains_id",
                "Field 'id' is not an array",
                "contains_id in querystring: Field 'id' is not an array",
            ),
        ),
        (
            "contains_any_last_modified=[1]",
            invalid(
                "contains_any_last_modified",
                "Field 'last_modified' is not an array",
                "contains_any_last_modified in querystring: Field 'last_modified' is not an array",
            ),
        ),
    ];
    for (q, want) in cases {
        let resp = s().get(&format!("{records}?{}", query(q)), &owner);
        assert_eq!((resp.status, resp.json()), (400, want), "{q}\n{resp}");
    }
}

#[test]
fn sort_by_several_fields_descending_nested_and_across_types() {
    let owner = User::fresh("owner");
    let records = typed_fixture(&owner);
    let order = |sort: &str| ids(&s().get(&format!("{records}?_sort={sort}"), &owner).json());
    // null < string < number < boolean, missing last ascending.
    assert_eq!(order("n"), ["c", "f", "a", "e", "b", "g", "d"]);
    assert_eq!(order("+n"), ["c", "f", "a", "e", "b", "g", "d"]);
    assert_eq!(order("-n"), ["d", "g", "b", "e", "a", "f", "c"]);
    // Strings by code point: uppercase first.
    assert_eq!(order("s"), ["f", "e", "a", "c", "d", "b", "g"]);
    assert_eq!(order("o.x,id"), ["c", "a", "b", "d", "e", "f", "g"]);
    assert_eq!(order("-o.x,id"), ["d", "e", "f", "g", "b", "a", "c"]);
    assert_eq!(order("id"), ["a", "b", "c", "d", "e", "f", "g"]);
    assert_eq!(order("-id"), ["g", "f", "e", "d", "c", "b", "a"]);
    // Unknown fields: every value missing, `-last_modified` breaks the tie.
    assert_eq!(order("unknown"), ["g", "f", "e", "d", "c", "b", "a"]);
    assert_eq!(order("last_modified"), ["a", "b", "c", "d", "e", "f", "g"]);

    // Several fields: the first decides, the next ones break ties.
    let (_, recs) = new_collection(s(), &owner);
    for (id, k, v) in [
        ("r1", 1, "b"),
        ("r2", 2, "a"),
        ("r3", 1, "a"),
        ("r4", 2, "b"),
    ] {
        s().put(
            &format!("{recs}/{id}"),
            &owner,
            json!({"data": {"k": k, "v": v, "o": {"k": -k}}}),
        )
        .expect(201);
    }
    let order = |sort: &str| ids(&s().get(&format!("{recs}?_sort={sort}"), &owner).json());
    assert_eq!(order("k,v"), ["r3", "r1", "r2", "r4"]);
    assert_eq!(order("k,-v"), ["r1", "r3", "r4", "r2"]);
    assert_eq!(order("-k,v"), ["r2", "r4", "r3", "r1"]);
    assert_eq!(order("-o.k,-v"), ["r1", "r3", "r4", "r2"]);
    // Equal on k: newest first.
    assert_eq!(order("k"), ["r3", "r1", "r4", "r2"]);
    // Filters and sort together.
    assert_eq!(
        ids(&s().get(&format!("{recs}?k=2&_sort=-v"), &owner).json()),
        ["r4", "r2"]
    );
}

/// Follows `Next-Page` from `first` until the last page; returns every
/// page's ids.
fn walk(first: &str, owner: &User) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut resp = s().get(first, owner).expect(200);
    loop {
        pages.push(ids(&resp.json()));
        let Some(next) = resp.header("Next-Page").map(str::to_owned) else {
            return pages;
        };
        assert!(pages.len() < 100, "runaway pagination");
        let root = s().root_url();
        let path = next
            .strip_prefix(&root)
            .unwrap_or_else(|| panic!("Next-Page {next} not under {root}"));
        resp = s().get(path, owner).expect(200);
    }
}

#[test]
fn pagination_walks_every_object_once_keeping_the_query() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for i in 0..11 {
        s().put(
            &format!("{records}/r{i:02}"),
            &owner,
            json!({"data": {"n": i % 4, "even": i % 2 == 0, "o": {"i": i}, "x": "drop"}}),
        )
        .expect(201);
    }
    // Default order, filter, sort on a nested field, _fields: every page
    // keeps them.
    let full = |q: &str| ids(&s().get(&format!("{records}?{q}"), &owner).json());
    for q in [
        "",
        "even=true",
        "_sort=n,-o.i",
        "_sort=-n&even=false&_fields=n",
        "_since=0&_sort=o.i",
    ] {
        let all = full(q);
        for limit in [1, 2, 3, 5, 6] {
            let first = format!("{records}?{q}&_limit={limit}");
            let pages = walk(&first, &owner);
            let flat: Vec<String> = pages.concat();
            assert_eq!(flat, all, "{first}: pages {pages:?}");
            for (i, p) in pages.iter().enumerate() {
                if i + 1 < pages.len() {
                    assert_eq!(p.len(), limit, "{first}: page {i} of {pages:?}");
                }
            }
            // No empty last page when the count is a multiple of the size.
            assert!(
                !pages.last().unwrap().is_empty() || all.is_empty(),
                "{first}: {pages:?}"
            );
        }
    }
    // Next-Page is absolute, keeps every parameter, sets _limit and _token.
    let resp = s()
        .get(
            &format!("{records}?even=true&_sort=-o.i&_fields=n&_limit=2"),
            &owner,
        )
        .expect(200);
    assert_eq!(
        resp.json()["data"],
        json!([{"id": "r10", "last_modified": resp.json()["data"][0]["last_modified"], "n": 2},
               {"id": "r08", "last_modified": resp.json()["data"][1]["last_modified"], "n": 0}])
    );
    let next = resp.header("Next-Page").expect("Next-Page").to_string();
    let (base, q) = next.split_once('?').unwrap();
    assert_eq!(base, format!("{}{records}", s().root_url()));
    let params: BTreeMap<&str, &str> = q.split('&').filter_map(|p| p.split_once('=')).collect();
    assert_eq!(params["even"], "true");
    assert_eq!(params["_sort"], "-o.i");
    assert_eq!(params["_fields"], "n");
    assert_eq!(params["_limit"], "2");
    assert!(!params["_token"].is_empty(), "{next}");
    // HEAD: counts ignore _limit.
    let head = s().head(&format!("{records}?even=true&_limit=2"), &owner);
    assert_eq!(head.header("Total-Objects"), Some("6"), "{head}");
    assert_eq!(head.header("Total-Records"), Some("6"), "{head}");
    assert!(head.body.is_empty());
    // GET sends no counts.
    let get = s().get(&format!("{records}?_limit=2"), &owner);
    assert_eq!(get.header("Total-Objects"), None, "{get}");
    assert_eq!(get.header("Total-Records"), None, "{get}");
    // _limit=0 is no limit; an empty _limit is not given.
    assert_eq!(full("_limit=0").len(), 11);
    assert_eq!(full("_limit=").len(), 11);
    // GET tokens can be reused.
    let token_page = next.strip_prefix(&s().root_url()).unwrap().to_string();
    let a = s().get(&token_page, &owner).expect(200).json();
    let b = s().get(&token_page, &owner).expect(200).json();
    assert_eq!(a, b);
}

/// Keyset pagination: between two pages other clients create, delete and
/// change objects; every object that existed throughout and kept its sort
/// position is returned exactly once.
#[test]
fn the_token_stays_right_while_others_write() {
    let owner = User::fresh("owner");
    let writer = &owner;
    for sort in ["n", "-n", "", "title,-n"] {
        let (_, records) = new_collection(s(), &owner);
        for i in 0..20 {
            s().put(
                &format!("{records}/r{i:02}"),
                &owner,
                json!({"data": {"n": i * 10, "title": "t"}}),
            )
            .expect(201);
        }
        let sort_q = if sort.is_empty() {
            String::new()
        } else {
            format!("&_sort={sort}")
        };
        let mut seen: Vec<String> = Vec::new();
        let mut resp = s()
            .get(&format!("{records}?_limit=4{sort_q}"), &owner)
            .expect(200);
        let mut round = 0;
        let mut deleted = BTreeSet::new();
        loop {
            let page = ids(&resp.json());
            seen.extend(page.iter().cloned());
            let Some(next) = resp.header("Next-Page").map(str::to_owned) else {
                break;
            };
            // Others write between pages: new objects everywhere in the
            // order, an already seen one deleted, an already seen one
            // changed (a new last_modified), an unseen one changed in a
            // field that is not sorted on.
            round += 1;
            for k in [1, 95, 205] {
                s().post(
                    &records,
                    writer,
                    json!({"data": {"n": k + round, "title": "t", "new": true}}),
                )
                .expect(201);
            }
            if let Some(victim) = page.first() {
                s().delete(&format!("{records}/{victim}"), writer)
                    .expect(200);
                deleted.insert(victim.clone());
            }
            if !sort.is_empty() {
                // Not on the sorted fields: it keeps its place.
                if let Some(unseen) = (0..20)
                    .map(|i| format!("r{i:02}"))
                    .find(|id| !seen.contains(id))
                {
                    s().patch(
                        &format!("{records}/{unseen}"),
                        writer,
                        json!({"data": {"touched": round}}),
                    )
                    .expect(200);
                }
            }
            if let Some(changed) = page.last() {
                if !deleted.contains(changed) {
                    s().patch(
                        &format!("{records}/{changed}"),
                        writer,
                        json!({"data": {"touched": round}}),
                    )
                    .expect(200);
                }
            }
            let path = next.strip_prefix(&s().root_url()).unwrap().to_string();
            resp = s().get(&path, &owner).expect(200);
        }
        let originals: Vec<String> = seen
            .iter()
            .filter(|i| i.starts_with('r'))
            .cloned()
            .collect();
        let unique: BTreeSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "sort {sort:?}: repeated: {seen:?}"
        );
        if sort.is_empty() {
            // Default order (newest first): a changed object moves to the top,
            // so only untouched ones are guaranteed; those are all there.
            for i in 0..20 {
                let id = format!("r{i:02}");
                let touched = s().get(&format!("{records}/{id}"), &owner).json()["data"]["touched"]
                    .is_number();
                if !touched && !deleted.contains(&id) {
                    assert!(
                        originals.contains(&id),
                        "sort {sort:?}: {id} skipped: {seen:?}"
                    );
                }
            }
        } else {
            let want: BTreeSet<String> = (0..20).map(|i| format!("r{i:02}")).collect();
            let got: BTreeSet<String> = originals.iter().cloned().collect();
            assert_eq!(got, want, "sort {sort:?}: {seen:?}");
        }
    }
}

#[test]
fn paginate_by_sets_the_page_size() {
    if Server::external_mode() {
        return;
    }
    let srv = Server::start_with_env(&[("KINTO_PAGINATE_BY", "3")]);
    let owner = User::fresh("owner");
    let (_, records) = new_collection(&srv, &owner);
    for i in 0..7 {
        srv.put(
            &format!("{records}/r{i}"),
            &owner,
            json!({"data": {"i": i}}),
        )
        .expect(201);
    }
    for (q, size, limit) in [
        ("", 3, "3"),
        ("?_limit=10", 3, "3"),
        ("?_limit=2", 2, "2"),
        ("?_limit=0", 3, "3"),
    ] {
        let resp = srv.get(&format!("{records}{q}"), &owner).expect(200);
        assert_eq!(ids(&resp.json()).len(), size, "{q}\n{resp}");
        let next = resp.header("Next-Page").expect("Next-Page");
        assert!(next.contains(&format!("_limit={limit}&")), "{q}: {next}");
    }
    let mut all = Vec::new();
    let mut path = records.clone();
    loop {
        let resp = srv.get(&path, &owner).expect(200);
        all.extend(ids(&resp.json()));
        match resp.header("Next-Page") {
            Some(n) => path = n.strip_prefix(&srv.root_url()).unwrap().to_string(),
            None => break,
        }
    }
    assert_eq!(all, ["r6", "r5", "r4", "r3", "r2", "r1", "r0"]);
    let head = srv.head(&records, &owner);
    assert_eq!(head.header("Total-Objects"), Some("7"), "{head}");
}

#[test]
fn limit_and_token_errors() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let invalid = |name: Value, description: &str, message: &str| {
        json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
               "details": [{"location": "querystring", "name": name, "description": description}]})
    };
    let cases = [
        (
            "_limit=-1",
            invalid(
                json!("_limit"),
                "-1 is less than minimum value 0",
                "_limit in querystring: -1 is less than minimum value 0",
            ),
        ),
        (
            "_limit=abc",
            invalid(
                json!("_limit"),
                "\"abc\" is not a number",
                "_limit in querystring: \"abc\" is not a number",
            ),
        ),
        (
            "_limit=10000000000000000000",
            invalid(
                json!("_limit"),
                "10000000000000000000 is greater than maximum value 9223372036854775808",
                "_limit in querystring: 10000000000000000000 is greater than maximum value 9223372036854775808",
            ),
        ),
        (
            "_token=abc",
            invalid(
                Value::Null,
                "_token has invalid content",
                "querystring: _token has invalid content",
            ),
        ),
        // Valid base64 JSON, but not a token.
        (
            "_token=e30",
            invalid(
                Value::Null,
                "_token has invalid content",
                "querystring: _token has invalid content",
            ),
        ),
    ];
    for (q, want) in cases {
        let resp = s().get(&format!("{records}?{q}"), &owner);
        assert_eq!((resp.status, resp.json()), (400, want), "{q}\n{resp}");
    }
    // Not UTF-8 once decoded.
    assert_400(&s().get(&format!("{records}?_token=%FF%FE"), &owner));
    // The largest _limit is fine.
    s().get(&format!("{records}?_limit=9223372036854775808"), &owner)
        .expect(200);
}

#[test]
fn fields_on_lists_and_objects() {
    let owner = User::fresh("owner");
    let records = typed_fixture(&owner);
    let resp = s()
        .get(
            &format!("{records}?_fields=o.y.z,s,nope&_sort=id&_limit=2"),
            &owner,
        )
        .expect(200);
    let data = resp.json()["data"].clone();
    assert_eq!(
        data,
        json!([
            {"id": "a", "last_modified": data[0]["last_modified"], "o": {"y": {"z": "deep"}}, "s": "Hello"},
            {"id": "b", "last_modified": data[1]["last_modified"], "s": "world"},
        ])
    );
    // A dotted key is taken whole.
    let resp = s()
        .get(&format!("{records}?_fields=dotted.key&id=e"), &owner)
        .expect(200);
    assert_eq!(resp.json()["data"][0]["dotted.key"], json!(1), "{resp}");
    // An empty _fields selects whole objects.
    let whole = s().get(&format!("{records}?id=a"), &owner).json();
    let empty = s().get(&format!("{records}?id=a&_fields="), &owner).json();
    assert_eq!(whole, empty);
    // On one object: the fields, id and last_modified, and no permissions.
    let resp = s()
        .get(&format!("{records}/a?_fields=o.y.z,b"), &owner)
        .expect(200);
    let body = resp.json();
    assert_eq!(
        body,
        json!({"data": {"id": "a", "last_modified": body["data"]["last_modified"],
                        "o": {"y": {"z": "deep"}}, "b": true}})
    );
    // Tombstones keep `deleted`.
    s().delete(&format!("{records}/b"), &owner).expect(200);
    let resp = s()
        .get(&format!("{records}?_since=0&_fields=s&id=b"), &owner)
        .expect(200);
    let data = resp.json()["data"].clone();
    assert_eq!(
        data,
        json!([{"id": "b", "last_modified": data[0]["last_modified"], "deleted": true}])
    );
}

#[test]
fn bulk_delete_with_filters() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for i in 0..6 {
        s().put(
            &format!("{records}/r{i}"),
            &owner,
            json!({"data": {"n": i, "k": i % 2, "tags": if i < 3 { json!(["low"]) } else { json!(["high"]) }}}),
        )
        .expect(201);
    }
    let before = s().get(&records, &owner).etag();
    let resp = s()
        .delete(&format!("{records}?k=0&_sort=n"), &owner)
        .expect(200);
    let data = resp.json()["data"].as_array().unwrap().clone();
    assert_eq!(ids(&resp.json()), ["r0", "r2", "r4"]);
    let stamps: Vec<u64> = data.iter().map(lm).collect();
    for (d, t) in data.iter().zip(&stamps) {
        assert_eq!(
            d,
            &json!({"id": d["id"], "last_modified": t, "deleted": true})
        );
        assert!(*t > before);
    }
    let distinct: BTreeSet<u64> = stamps.iter().copied().collect();
    assert_eq!(
        distinct.len(),
        3,
        "each tombstone has its own timestamp: {stamps:?}"
    );
    assert_eq!(resp.etag(), *stamps.iter().max().unwrap(), "{resp}");
    // What was not matched is untouched.
    assert_eq!(
        ids(&s().get(&format!("{records}?_sort=n"), &owner).json()),
        ["r1", "r3", "r5"]
    );
    // Nothing matches: an empty list, the list timestamp unchanged.
    let now = s().get(&records, &owner).etag();
    let resp = s().delete(&format!("{records}?k=7"), &owner).expect(200);
    assert_eq!(resp.json(), json!({"data": []}));
    assert_eq!(resp.etag(), now);
    // Operators, and _limit with _sort: the first ones in that order.
    let resp = s()
        .delete(
            &format!("{records}?contains_tags=high&_sort=-n&_limit=1"),
            &owner,
        )
        .expect(200);
    assert_eq!(ids(&resp.json()), ["r5"]);
    // The tombstones are in the _since feed.
    let feed = s()
        .get(&format!("{records}?_since={before}&_sort=id"), &owner)
        .json();
    assert_eq!(ids(&feed), ["r0", "r2", "r4", "r5"]);
    // Invalid filters refuse the whole delete.
    let resp = s().delete(&format!("{records}?like_n=1"), &owner);
    assert_400(&resp);
    assert_eq!(ids(&s().get(&records, &owner).json()).len(), 2);
}

/// Spec 14: a bulk DELETE honouring `_limit` is paginated with `Next-Page`
/// when more remain (the reference sends it). Cairn deletes the first page
/// but sends no `Next-Page` (plural.rs drops the page's token).
#[test]
fn bulk_delete_pages_with_next_page() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for i in 0..3 {
        s().put(&format!("{records}/r{i}"), &owner, json!({"data": {}}))
            .expect(201);
    }
    let resp = s()
        .delete(&format!("{records}?_limit=2"), &owner)
        .expect(200);
    assert_eq!(ids(&resp.json()).len(), 2);
    assert!(resp.header("Next-Page").is_some(), "{resp}");
}

/// Spec 11 and 13: `Next-Page` is never sent on `HEAD` (the reference
/// sends none). Cairn sends it when `_limit` leaves more (server/src/plural.rs
/// `list` adds it whatever the method).
#[test]
fn head_never_sends_next_page() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for i in 0..3 {
        s().put(&format!("{records}/r{i}"), &owner, json!({"data": {}}))
            .expect(201);
    }
    let head = s().head(&format!("{records}?_limit=2"), &owner);
    assert_eq!(head.header("Total-Objects"), Some("3"), "{head}");
    assert_eq!(head.header("Next-Page"), None, "{head}");
}
