//! api-core section 7 (If-Match / If-None-Match, the full table) and
//! Cairn's concurrency promises (issue 3): racing conditional writes have
//! exactly one winner, plain concurrent writes are never refused, a 412
//! never shows an object to someone who cannot read it.

use std::sync::Barrier;

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

/// The columns of section 7's table.
#[derive(Debug, Clone, Copy)]
enum Cond {
    None,
    IfMatchCur,
    IfMatchOld,
    IfMatchAny,
    IfNoneMatchCur,
    IfNoneMatchOld,
    IfNoneMatchAny,
}

const CONDS: [Cond; 7] = [
    Cond::None,
    Cond::IfMatchCur,
    Cond::IfMatchOld,
    Cond::IfMatchAny,
    Cond::IfNoneMatchCur,
    Cond::IfNoneMatchOld,
    Cond::IfNoneMatchAny,
];

fn with_cond(r: Request, cond: Cond, cur: u64) -> Request {
    let q = |t: u64| format!("\"{t}\"");
    match cond {
        Cond::None => r,
        Cond::IfMatchCur => r.header("If-Match", &q(cur)),
        Cond::IfMatchOld => r.header("If-Match", &q(cur - 1)),
        Cond::IfMatchAny => r.header("If-Match", "*"),
        Cond::IfNoneMatchCur => r.header("If-None-Match", &q(cur)),
        Cond::IfNoneMatchOld => r.header("If-None-Match", &q(cur - 1)),
        Cond::IfNoneMatchAny => r.header("If-None-Match", "*"),
    }
}

fn body_for(method: &str) -> Option<Value> {
    match method {
        "PUT" | "PATCH" | "POST" => Some(json!({"data": {"changed": true}})),
        _ => None,
    }
}

/// Checks one cell; `existing` is the object's data when it exists.
#[allow(clippy::too_many_arguments)]
fn check_cell(
    failures: &mut Vec<String>,
    row: &str,
    method: &str,
    url: &str,
    user: &User,
    cond: Cond,
    cur: u64,
    expected: u16,
    existing: Option<&Value>,
) {
    let mut r = with_cond(s().req(method, url).user(user), cond, cur);
    if let Some(b) = body_for(method) {
        r = r.json(&b);
    }
    let resp = r.send();
    let label = format!("[{row}] {method} {cond:?}");
    if resp.status != expected {
        failures.push(format!("{label}: expected {expected}\n{resp}"));
        return;
    }
    match expected {
        412 => {
            let mut want = json!({"code": 412, "errno": 114, "error": "Precondition Failed",
                                  "message": "Resource was modified meanwhile"});
            if let Some(e) = existing {
                want["details"] = json!({"existing": e});
            }
            let got: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
            if method != "HEAD" && got != want {
                failures.push(format!("{label}: 412 body should be {want}\n{resp}"));
            }
            if resp.header("ETag") != Some(format!("\"{cur}\"").as_str()) {
                failures.push(format!(
                    "{label}: 412 should carry the current ETag \"{cur}\"\n{resp}"
                ));
            }
        }
        304 => {
            let ok = resp.body.is_empty()
                && resp.header("ETag") == Some(format!("\"{cur}\"").as_str())
                && resp.header("Last-Modified").is_some()
                && resp.header("Content-Type").is_none();
            if !ok {
                failures.push(format!("{label}: 304 needs an empty body, ETag, Last-Modified, no Content-Type\n{resp}"));
            }
        }
        _ => {}
    }
}

/// Rows about one existing or missing object.
#[test]
fn preconditions_on_objects() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let mut failures = Vec::new();
    let rows: [(&str, &[&str], [u16; 7]); 2] = [
        (
            "object exists, read",
            &["GET", "HEAD"],
            [200, 200, 412, 200, 304, 200, 412],
        ),
        (
            "object exists, write",
            &["PUT", "PATCH", "DELETE"],
            [200, 200, 412, 200, 200, 200, 412],
        ),
    ];
    for (row, methods, expected) in rows {
        for method in methods {
            for (cond, want) in CONDS.iter().zip(expected) {
                let url = format!("{records}/{}", fresh_id("r"));
                let created = s()
                    .put(&url, &owner, json!({"data": {"v": 1}}))
                    .expect(201)
                    .data();
                check_cell(
                    &mut failures,
                    row,
                    method,
                    &url,
                    &owner,
                    *cond,
                    lm(&created),
                    want,
                    Some(&created),
                );
                // A refused write changed nothing.
                if want == 412 {
                    let now = s().get(&url, &owner).expect(200).data();
                    if now != created {
                        failures.push(format!(
                            "[{row}] {method} {cond:?}: 412 but object changed to {now}"
                        ));
                    }
                }
            }
        }
    }
    // PUT on a missing object.
    for (cond, want) in CONDS.iter().zip([201, 412, 412, 412, 201, 201, 201]) {
        // For a missing object, `cur` is the list timestamp.
        let cur = s().get(&records, &owner).etag();
        let url = format!("{records}/{}", fresh_id("m"));
        check_cell(
            &mut failures,
            "object missing, PUT",
            "PUT",
            &url,
            &owner,
            *cond,
            cur,
            want,
            None,
        );
        let exists = s().get(&url, &owner).status;
        if exists != if want == 201 { 200 } else { 404 } {
            failures.push(format!("PUT missing {cond:?}: afterwards GET is {exists}"));
        }
    }
    // Everything else on a missing object: 404 wins.
    let cur = s().get(&records, &owner).etag();
    for method in ["GET", "HEAD", "PATCH", "DELETE"] {
        for cond in CONDS {
            let url = format!("{records}/{}", fresh_id("m"));
            let mut r = with_cond(s().req(method, &url).user(&owner), cond, cur);
            if let Some(b) = body_for(method) {
                r = r.json(&b);
            }
            let resp = r.send();
            if resp.status != 404 {
                failures.push(format!(
                    "[object missing] {method} {cond:?}: expected 404\n{resp}"
                ));
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

/// Rows about plural endpoints; `cur` is the list timestamp.
#[test]
fn preconditions_on_plurals() {
    let owner = User::fresh("owner");
    let bid = new_bucket(s(), &owner);
    let mut failures = Vec::new();
    let rows: [(&str, [u16; 7]); 4] = [
        ("GET", [200, 200, 412, 200, 304, 200, 412]),
        ("HEAD", [200, 200, 412, 200, 304, 200, 412]),
        ("POST", [201, 412, 412, 412, 201, 201, 201]),
        ("DELETE", [200, 200, 412, 200, 200, 200, 412]),
    ];
    for (method, expected) in rows {
        for (cond, want) in CONDS.iter().zip(expected) {
            let coll = fresh_id("c");
            s().put(
                &format!("/buckets/{bid}/collections/{coll}"),
                &owner,
                json!({}),
            )
            .expect(201);
            let records = format!("/buckets/{bid}/collections/{coll}/records");
            s().post(&records, &owner, json!({})).expect(201);
            let cur = s().get(&records, &owner).etag();
            check_cell(
                &mut failures,
                "plural",
                method,
                &records,
                &owner,
                *cond,
                cur,
                want,
                None,
            );
            let count = s()
                .head(&records, &owner)
                .header("Total-Objects")
                .map(str::to_string);
            let expected_count = match (method, want) {
                ("POST", 201) => "2",
                ("DELETE", 200) => "0",
                _ => "1",
            };
            if count.as_deref() != Some(expected_count) {
                failures.push(format!(
                    "{method} {cond:?}: {count:?} objects left, expected {expected_count}"
                ));
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
fn if_match_may_carry_an_etag_seen_earlier() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r");
    s().put(&url, &owner, json!({})).expect(201);
    // The list ETag equals the record's timestamp here.
    let etag = s()
        .get(&records, &owner)
        .header("ETag")
        .unwrap()
        .to_string();
    s().req("PATCH", &url)
        .user(&owner)
        .header("If-Match", &etag)
        .json(&json!({"data": {"a": 1}}))
        .send()
        .expect(200);
    let resp = s()
        .req("PATCH", &url)
        .user(&owner)
        .header("If-Match", &etag)
        .json(&json!({"data": {"a": 2}}))
        .send();
    let current = s().get(&url, &owner).data();
    assert_412(&resp, Some(&current));
    assert_ts_headers(&resp, lm(&current));
    assert_eq!(current["a"], 1);
}

#[test]
fn malformed_precondition_headers_are_400() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r");
    let t = lm(&s().put(&url, &owner, json!({})).expect(201).data());
    for header in ["If-Match", "If-None-Match"] {
        for value in [
            t.to_string(),
            format!("W/\"{t}\""),
            format!("\"{t}\", \"1\""),
            "\"abc\"".into(),
            "\"\"".into(),
            "*abc".into(),
        ] {
            for method in ["GET", "PATCH"] {
                let mut r = s().req(method, &url).user(&owner).header(header, &value);
                if method == "PATCH" {
                    r = r.json(&json!({"data": {"x": 1}}));
                }
                let resp = r.send();
                let d = "The value should be integer between double quotes.";
                assert_eq!(
                    (resp.status, resp.json()),
                    (
                        400,
                        json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                               "message": format!("{header} in header: {d}"),
                               "details": [{"location": "header", "name": header, "description": d}]})
                    ),
                    "{header}: {value}\n{resp}"
                );
            }
        }
    }
    assert_eq!(lm(&s().get(&url, &owner).data()), t, "nothing was written");
}

#[test]
fn http_date_preconditions_are_ignored() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r");
    s().put(&url, &owner, json!({})).expect(201);
    let future = "Fri, 01 Jan 2100 00:00:00 GMT";
    let past = "Thu, 01 Jan 1970 00:00:00 GMT";
    s().req("GET", &url)
        .user(&owner)
        .header("If-Modified-Since", future)
        .send()
        .expect(200);
    s().req("PATCH", &url)
        .user(&owner)
        .header("If-Unmodified-Since", past)
        .json(&json!({"data": {}}))
        .send()
        .expect(200);
}

#[test]
fn permission_and_existence_checks_come_before_preconditions() {
    let owner = User::fresh("owner");
    let stranger = User::fresh("stranger");
    let (_, records) = new_collection(s(), &owner);
    let url = format!("{records}/r");
    s().put(&url, &owner, json!({})).expect(201);
    for (h, v) in [("If-Match", "\"1\""), ("If-None-Match", "*")] {
        assert_403(&s().req("GET", &url).user(&stranger).header(h, v).send());
        assert_403(
            &s().req("PATCH", &url)
                .user(&stranger)
                .header(h, v)
                .json(&json!({"data": {}}))
                .send(),
        );
        assert_401(&s().req("DELETE", &url).header(h, v).send());
        assert_404(
            &s().req("DELETE", &format!("{records}/nope"))
                .user(&owner)
                .header(h, v)
                .send(),
            "nope",
            "record",
        );
    }
}

/// Cairn's promise: `details.existing` only for who can read the object.
#[test]
fn a_412_never_reveals_an_unreadable_object() {
    let owner = User::fresh("owner");
    let creator = User::fresh("creator");
    let (bid, records) = new_collection(s(), &owner);
    s().patch(
        &format!("/buckets/{bid}/collections/c"),
        &owner,
        json!({"permissions": {"record:create": [s().userid(&creator)]}}),
    )
    .expect(200);
    s().put(
        &format!("{records}/secret"),
        &owner,
        json!({"data": {"pin": 1234}}),
    )
    .expect(201);
    // "Create only if absent" by someone who may create but not read.
    let resp = s()
        .req("PUT", &format!("{records}/secret"))
        .user(&creator)
        .header("If-None-Match", "*")
        .json(&json!({"data": {"pin": 0}}))
        .send();
    assert_error(
        &resp,
        412,
        114,
        "Precondition Failed",
        Some("Resource was modified meanwhile"),
    );
    assert!(
        resp.json()
            .get("details")
            .and_then(|d| d.get("existing"))
            .is_none(),
        "412 leaks the object\n{resp}"
    );
    assert!(!resp.text().contains("1234"), "{resp}");
    assert_eq!(
        s().get(&format!("{records}/secret"), &owner).data()["pin"],
        1234
    );
    // A reader does get it.
    let resp = s()
        .req("PUT", &format!("{records}/secret"))
        .user(&owner)
        .header("If-None-Match", "*")
        .json(&json!({}))
        .send();
    let current = s().get(&format!("{records}/secret"), &owner).data();
    assert_412(&resp, Some(&current));
}

/// Cairn's promise: N clients racing a conditional write on the same
/// version: exactly one wins, the others get 412.
#[test]
fn racing_conditional_writes_have_exactly_one_winner() {
    const N: usize = 8;
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for method in ["PATCH", "PUT", "DELETE"] {
        for round in 0..4 {
            let url = format!("{records}/{method}-{round}");
            let t = lm(&s()
                .put(&url, &owner, json!({"data": {"v": -1}}))
                .expect(201)
                .data());
            let barrier = Barrier::new(N);
            let results: Vec<(usize, Response)> = std::thread::scope(|sc| {
                let handles: Vec<_> = (0..N)
                    .map(|i| {
                        let (barrier, url, owner) = (&barrier, &url, &owner);
                        sc.spawn(move || {
                            let mut r = s()
                                .req(method, url)
                                .user(owner)
                                .header("If-Match", &format!("\"{t}\""));
                            if method != "DELETE" {
                                r = r.json(&json!({"data": {"v": i}}));
                            }
                            barrier.wait();
                            (i, r.send())
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            let winners: Vec<&(usize, Response)> =
                results.iter().filter(|(_, r)| r.status == 200).collect();
            assert_eq!(
                winners.len(),
                1,
                "{method} round {round}: {:?}",
                results.iter().map(|(_, r)| r.status).collect::<Vec<_>>()
            );
            for (_, r) in results.iter().filter(|(_, r)| r.status != 200) {
                // A DELETE that comes after the winner finds no object:
                // section 7's "404 wins over 412".
                let ok = r.status == 412 || (method == "DELETE" && r.status == 404);
                assert!(ok, "{method} round {round}: a loser must get 412\n{r}");
            }
            let (winner, resp) = winners[0];
            let after = s().get(&url, &owner);
            if method == "DELETE" {
                assert_eq!(after.status, 404);
            } else {
                assert_eq!(after.data()["v"], json!(winner));
                assert_eq!(after.data(), resp.data());
            }
            for (_, r) in results.iter().filter(|(_, r)| r.status == 412) {
                assert!(r.json()["errno"] == 114, "{r}");
            }
        }
    }
    // Create-if-absent races: one 201.
    for round in 0..4 {
        let url = format!("{records}/create-{round}");
        let barrier = Barrier::new(N);
        let statuses: Vec<u16> = std::thread::scope(|sc| {
            let handles: Vec<_> = (0..N)
                .map(|i| {
                    let (barrier, url, owner) = (&barrier, &url, &owner);
                    sc.spawn(move || {
                        let r = s()
                            .req("PUT", url)
                            .user(owner)
                            .header("If-None-Match", "*")
                            .json(&json!({"data": {"v": i}}));
                        barrier.wait();
                        r.send().status
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            statuses.iter().filter(|s| **s == 201).count(),
            1,
            "{statuses:?}"
        );
        assert_eq!(
            statuses.iter().filter(|s| **s == 412).count(),
            N - 1,
            "{statuses:?}"
        );
    }
}

/// Cairn's promise: concurrent plain creates and updates are never refused
/// (no "409 please retry"), and every write gets its own timestamp.
#[test]
fn concurrent_plain_writes_are_never_refused() {
    const THREADS: usize = 8;
    const EACH: usize = 15;
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let hot = format!("{records}/hot");
    s().put(&hot, &owner, json!({"data": {"n": 0}})).expect(201);
    let barrier = Barrier::new(THREADS);
    let stamps: Vec<Vec<(String, u64)>> = std::thread::scope(|sc| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (barrier, records, hot, owner) = (&barrier, &records, &hot, &owner);
                sc.spawn(move || {
                    barrier.wait();
                    let mut out = Vec::new();
                    for i in 0..EACH {
                        let resp = s().post(records, owner, json!({"data": {"t": t, "i": i}}));
                        assert_eq!(resp.status, 201, "{resp}");
                        out.push((
                            resp.data()["id"].as_str().unwrap().to_string(),
                            lm(&resp.data()),
                        ));
                        let resp = s().patch(hot, owner, json!({"data": {format!("t{t}"): i}}));
                        assert_eq!(resp.status, 200, "{resp}");
                        out.push(("hot".to_string(), lm(&resp.data())));
                        let resp =
                            s().put(&format!("{records}/t{t}"), owner, json!({"data": {"i": i}}));
                        assert!(resp.status == 200 || resp.status == 201, "{resp}");
                        out.push((format!("t{t}"), lm(&resp.data())));
                    }
                    out
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<u64> = stamps.iter().flatten().map(|(_, t)| *t).collect();
    let n = all.len();
    all.sort();
    all.dedup();
    assert_eq!(
        all.len(),
        n,
        "two writes of one list got the same timestamp"
    );
    // Every PATCH of the hot record was applied (top-level merge).
    let hot_now = s().get(&hot, &owner).data();
    for t in 0..THREADS {
        assert_eq!(hot_now[format!("t{t}")], json!(EACH - 1), "{hot_now}");
    }
    let head = s().head(&records, &owner);
    assert_eq!(
        head.header("Total-Objects"),
        Some((THREADS * EACH + 1 + THREADS).to_string().as_str())
    );
    assert_eq!(head.etag(), *all.last().unwrap());
}
