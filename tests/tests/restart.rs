//! Durability across restarts (issue 3): a restarted server on the same
//! data directory answers exactly as before (data, ids, permissions,
//! timestamps, tombstones, group memberships); a server whose projection
//! directory was deleted rebuilds the same state from the log; timestamps
//! never go back across restarts; SIGTERM stops the server promptly
//! without losing acknowledged writes; generated secrets are kept.

use std::time::Duration;

use cairn_tests::server::Options;
use cairn_tests::*;
use serde_json::{json, Value};

/// Where the server keeps its rebuildable projections inside `--data`.
const PROJECTIONS_DIR: &str = "projections";

fn owned() -> Option<(tempfile::TempDir, Server)> {
    if Server::external_mode() {
        eprintln!("skipped: restarts need a spawned server");
        return None;
    }
    let dir = tempfile::Builder::new()
        .prefix("cairn-restart-")
        .tempdir()
        .unwrap();
    let server = Server::start_on(&dir.path().join("data"));
    Some((dir, server))
}

/// Users and the URLs whose answers must survive a restart.
struct World {
    users: Vec<User>,
    urls: Vec<String>,
}

fn populate(s: &Server) -> World {
    let alice = User::new("alice", "a-pw");
    let bob = User::new("bob", "b-pw");
    let carol = User::new("carol", "c-pw");
    let (aid, bid_) = (s.userid(&alice), s.userid(&bob));
    let mut urls = vec!["/buckets".to_string(), "/buckets?_since=0".to_string()];
    for b in ["shared", "private"] {
        s.put(
            &format!("/buckets/{b}"),
            &alice,
            json!({"data": {"title": b}}),
        )
        .expect(201);
        s.put(
            &format!("/buckets/{b}/groups/friends"),
            &alice,
            json!({"data": {"members": [bid_]}}),
        )
        .expect(201);
        s.put(&format!("/buckets/{b}/groups/old"), &alice, json!({}))
            .expect(201);
        s.delete(&format!("/buckets/{b}/groups/old"), &alice)
            .expect(200);
        for c in ["tasks", "notes", "gone"] {
            let coll = format!("/buckets/{b}/collections/{c}");
            s.put(&coll, &alice, json!({"data": {"c": c}, "permissions": {"record:create": ["system.Authenticated"]}}))
                .expect(201);
            for i in 0..6 {
                let perms = if i % 2 == 0 {
                    json!({"read": [format!("/buckets/{b}/groups/friends")]})
                } else {
                    json!({"write": [aid.clone()]})
                };
                s.put(
                    &format!("{coll}/records/r{i}"),
                    &alice,
                    json!({"data": {"i": i, "s": "é"}, "permissions": perms}),
                )
                .expect(201);
                urls.push(format!("{coll}/records/r{i}"));
            }
            s.patch(
                &format!("{coll}/records/r1"),
                &alice,
                json!({"data": {"patched": true}}),
            )
            .expect(200);
            s.delete(&format!("{coll}/records/r2"), &alice).expect(200);
            s.post(
                &format!("{coll}/records"),
                &carol,
                json!({"data": {"by": "carol"}}),
            )
            .expect(201);
            urls.extend([
                coll.clone(),
                format!("{coll}/records"),
                format!("{coll}/records?_since=0"),
                format!("{coll}/records?_before={}", now_ms()),
            ]);
        }
        s.delete(&format!("/buckets/{b}/collections/gone"), &alice)
            .expect(200);
        urls.extend([
            format!("/buckets/{b}"),
            format!("/buckets/{b}/collections"),
            format!("/buckets/{b}/collections?_since=0"),
            format!("/buckets/{b}/groups"),
            format!("/buckets/{b}/groups?_since=0"),
            format!("/buckets/{b}/groups/friends"),
        ]);
    }
    s.patch(
        "/buckets/shared",
        &alice,
        json!({"permissions": {"read": ["system.Authenticated"]}}),
    )
    .expect(200);
    s.delete("/buckets/private/collections/notes/records/r0", &alice)
        .expect(200);
    // Personal buckets (every user's: reading `default` would create it).
    for u in [&alice, &bob, &carol] {
        s.post(
            "/buckets/default/collections/diary/records",
            u,
            json!({"data": {"mine": true}}),
        )
        .expect(201);
    }
    urls.extend([
        "/buckets/default".to_string(),
        "/buckets/default/collections/diary/records?_since=0".to_string(),
    ]);
    World {
        users: vec![alice, bob, carol],
        urls,
    }
}

/// Every answer the world gives, as comparable text (status, ETag,
/// Last-Modified, body; for `GET /` only the `user` block: `url` has the
/// port in it).
fn snapshot(s: &Server, world: &World) -> Vec<String> {
    let mut out = Vec::new();
    for u in &world.users {
        let root = s.get("/", u).expect(200).json();
        out.push(format!("GET / as {}: {}", u.name, root["user"]));
        for url in &world.urls {
            for method in ["GET", "HEAD"] {
                let r = s.req(method, url).user(u).send();
                out.push(format!(
                    "{method} {url} as {}: {} etag={:?} lm={:?} total={:?} {}",
                    u.name,
                    r.status,
                    r.header("ETag"),
                    r.header("Last-Modified"),
                    r.header("Total-Objects"),
                    r.text()
                ));
            }
        }
    }
    out
}

#[track_caller]
fn assert_same(before: &[String], after: &[String], what: &str) {
    assert_eq!(before.len(), after.len());
    let diffs: Vec<String> = before
        .iter()
        .zip(after)
        .filter(|(a, b)| a != b)
        .take(10)
        .map(|(a, b)| format!("before: {a}\nafter:  {b}"))
        .collect();
    assert!(
        diffs.is_empty(),
        "{what}: {} answers differ, e.g.\n{}",
        diffs.len(),
        diffs.join("\n\n")
    );
}

#[test]
fn restarts_and_projection_rebuild_preserve_every_answer() {
    let Some((_dir, mut s)) = owned() else { return };
    let world = populate(&s);
    let before = snapshot(&s, &world);
    assert!(
        before.iter().any(|l| l.contains("\"deleted\":true")),
        "the world has tombstones"
    );

    s.restart(); // SIGTERM, then start again
    assert_same(&before, &snapshot(&s, &world), "after a graceful restart");

    s.kill9();
    s.restart();
    assert_same(&before, &snapshot(&s, &world), "after kill -9 at rest");

    s.terminate();
    let proj = s.data_dir().join(PROJECTIONS_DIR);
    assert!(
        proj.is_dir(),
        "no projection directory at {}",
        proj.display()
    );
    std::fs::remove_dir_all(&proj).unwrap();
    s.restart();
    assert_same(
        &before,
        &snapshot(&s, &world),
        "after rebuilding the projections from the log",
    );

    // And it keeps working: a write lands after everything seen.
    let alice = &world.users[0];
    let max_seen = s
        .get("/buckets/shared/collections/tasks/records", alice)
        .etag();
    let t = lm(&s
        .post(
            "/buckets/shared/collections/tasks/records",
            alice,
            json!({}),
        )
        .expect(201)
        .data());
    assert!(t > max_seen);
}

#[test]
fn timestamps_never_go_back_across_restarts() {
    let Some((_dir, mut s)) = owned() else { return };
    let u = User::new("u", "pw");
    s.put("/buckets/b", &u, json!({})).expect(201);
    s.put("/buckets/b/collections/c", &u, json!({})).expect(201);
    let records = "/buckets/b/collections/c/records";
    let mut last = 0;
    for round in 0..3 {
        for i in 0..5 {
            let t = lm(&s
                .post(records, &u, json!({"data": {"round": round, "i": i}}))
                .expect(201)
                .data());
            assert!(t > last, "round {round}: {t} <= {last}");
            last = t;
        }
        let etag = s.get(records, &u).etag();
        assert_eq!(etag, last);
        if round == 1 {
            // A client-supplied future timestamp moves the list ahead of
            // the clock; a restart must not forget it.
            last = now_ms() + 30_000;
            s.post(records, &u, json!({"data": {"last_modified": last}}))
                .expect(201);
        }
        s.kill9();
        s.restart();
        assert_eq!(
            s.get(records, &u).etag(),
            last,
            "list timestamp after restart"
        );
        let t = lm(&s
            .put(&format!("{records}/after-{round}"), &u, json!({}))
            .expect(201)
            .data());
        assert!(t > last, "after restart {round}: {t} <= {last}");
        last = t;
    }
    // Delete + re-create after a restart: still no going back.
    s.delete("/buckets/b/collections/c", &u).expect(200);
    s.restart();
    s.put("/buckets/b/collections/c", &u, json!({})).expect(201);
    let t = lm(&s.post(records, &u, json!({})).expect(201).data());
    assert!(t > last, "re-created after restart: {t} <= {last}");
}

#[test]
fn sigterm_stops_promptly_and_keeps_acknowledged_writes() {
    let Some((_dir, mut s)) = owned() else { return };
    let u = User::new("u", "pw");
    s.put("/buckets/b", &u, json!({})).expect(201);
    s.put("/buckets/b/collections/c", &u, json!({})).expect(201);
    let endpoint = s.endpoint().clone();
    let (acked, took) = std::thread::scope(|sc| {
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let endpoint = endpoint.clone();
                let u = u.clone();
                sc.spawn(move || {
                    let mut acked = Vec::new();
                    for i in 0..10_000 {
                        let id = format!("w{w}-{i}");
                        let r = Request::new(
                            &endpoint,
                            "PUT",
                            &format!("/buckets/b/collections/c/records/{id}"),
                        )
                        .user(&u)
                        .json(&json!({"data": {"w": w, "i": i}}))
                        .try_send_timeout(Duration::from_secs(5));
                        match r {
                            Ok(resp) if resp.status == 201 => acked.push((id, resp.data())),
                            _ => break,
                        }
                    }
                    acked
                })
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let took = s.terminate();
        let acked: Vec<(String, Value)> = writers
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        (acked, took)
    });
    assert!(
        took < Duration::from_millis(500),
        "SIGTERM took {took:?} to stop the server"
    );
    assert!(!acked.is_empty());
    s.restart();
    let list = s
        .get("/buckets/b/collections/c/records", &u)
        .expect(200)
        .data();
    let stored: std::collections::HashMap<String, Value> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|o| (o["id"].as_str().unwrap().to_string(), o.clone()))
        .collect();
    for (id, data) in &acked {
        assert_eq!(
            stored.get(id),
            Some(data),
            "acknowledged write {id} lost or changed"
        );
    }
}

#[test]
fn generated_secrets_are_kept_in_the_data_dir() {
    if Server::external_mode() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        omit_secrets: true,
        ..Options::default()
    };
    let mut s = Server::start_with(&dir.path().join("data"), opts, None);
    let alice = User::new("alice", "wonderland");
    let id = s.userid(&alice);
    let bucket = s.get("/buckets/default", &alice).expect(200).data()["id"].clone();
    // Generated, so not the vector for the harness's s3cr3t secret.
    assert_ne!(
        id,
        "basicauth:c04127fd1715748ea49a5f9f7f3e50913287c0830d8aa4fb5a1e10f57914bdb5"
    );
    s.restart();
    assert_eq!(s.userid(&alice), id);
    assert_eq!(
        s.get("/buckets/default", &alice).expect(200).data()["id"],
        bucket
    );
    s.kill9();
    s.restart();
    assert_eq!(s.userid(&alice), id);
}
