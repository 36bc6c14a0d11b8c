//! The audit and recovery tools (issue 6), driven as an operator would:
//! the real `cairn` binary for `serve`, `log verify|show|checkpoint|replay`,
//! `snapshot` and `restore`, over real data directories.
//!
//! * a snapshot taken while writers run restores to exactly the writes up
//!   to its log offset, with the same ids, permissions, timestamps and
//!   `_since` answers, and the same user ids (secrets carried);
//! * `log replay --until T` serves what the live server answered at T;
//! * a changed byte, a deleted record, two swapped records make `log
//!   verify` fail naming the offset; a checkpoint taken before catches a
//!   rewritten chain and a cut tail;
//! * a truncated or corrupted snapshot is refused with a clear message and
//!   nothing is written;
//! * `projections rebuild` refuses a live server, and the rebuilt store
//!   answers as the old one did.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_tests::server::{cairn_bin, Options};
use cairn_tests::*;
use serde_json::{json, Value};

/// Runs `cairn ARGS` with a clean environment; returns the output.
fn cairn(args: &[&str]) -> Output {
    let mut cmd = Command::new(cairn_bin());
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("KINTO_") || k.starts_with("CAIRN_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("CAIRN_LOG", "warn");
    cmd.output().expect("run cairn")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs `cairn ARGS`, asserts the exit status, returns stdout.
#[track_caller]
fn cairn_ok(args: &[&str]) -> String {
    let out = cairn(args);
    assert!(
        out.status.success(),
        "cairn {args:?} failed ({})\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stdout)
}

/// Runs `cairn ARGS` expecting exit status `code`; returns stderr.
#[track_caller]
fn cairn_fails(args: &[&str], code: i32) -> String {
    let out = cairn(args);
    assert_eq!(
        out.status.code(),
        Some(code),
        "cairn {args:?}\nstdout:\n{}\nstderr:\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    text(&out.stderr)
}

fn p(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn tempdir(label: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("cairn-tools-{label}-"))
        .tempdir()
        .unwrap()
}

/// `offset N` from a report line starting with `label`.
fn head_offset(report: &str, label: &str) -> u64 {
    let line = report
        .lines()
        .find(|l| l.starts_with(label))
        .unwrap_or_else(|| panic!("no {label:?} line in\n{report}"));
    let after = line.split("offset ").nth(1).expect("offset");
    after
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .expect("number")
}

fn skip_external() -> bool {
    if Server::external_mode() {
        eprintln!("skipped: the tools need a spawned server's data directory");
        return true;
    }
    false
}

/// Record id → log offset of its last change, from `log show --json`.
fn offsets_of(data: &Path, object: &str) -> std::collections::HashMap<String, u64> {
    let out = cairn_ok(&[
        "log",
        "show",
        "--data",
        p(data),
        "--json",
        "--object",
        object,
    ]);
    out.lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|v| {
            (
                v["id"].as_str().unwrap().to_string(),
                v["offset"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// An acknowledged write: the record as the server answered it.
#[derive(Debug, Clone)]
struct Acked {
    id: String,
    body: Value,
}

#[test]
fn snapshot_while_writers_run_restores_exactly_the_writes_before_its_offset() {
    if skip_external() {
        return;
    }
    let dir = tempdir("snap");
    let data = dir.path().join("data");
    // The server generates its own secrets: the restore must carry them.
    let opts = Options {
        omit_secrets: true,
        ..Options::default()
    };
    let live = Server::start_with(&data, opts.clone(), None);
    let alice = User::new("alice", "a-pw");
    let bob = User::new("bob", "b-pw");
    let bob_id = live.userid(&bob);
    live.put("/buckets/b", &alice, json!({"data": {"t": 1}}))
        .expect(201);
    live.put(
        "/buckets/b/groups/friends",
        &alice,
        json!({"data": {"members": [bob_id]}}),
    )
    .expect(201);
    let coll = "/buckets/b/collections/c";
    live.put(
        coll,
        &alice,
        json!({"permissions": {"record:create": ["system.Authenticated"]}}),
    )
    .expect(201);
    // Some history before the writers: updates, a deletion (tombstone),
    // a personal bucket.
    live.put(
        &format!("{coll}/records/keep"),
        &alice,
        json!({"data": {"v": 1}}),
    )
    .expect(201);
    live.patch(
        &format!("{coll}/records/keep"),
        &alice,
        json!({"data": {"v": 2}}),
    )
    .expect(200);
    live.put(&format!("{coll}/records/gone"), &alice, json!({}))
        .expect(201);
    live.delete(&format!("{coll}/records/gone"), &alice)
        .expect(200);
    let personal = live.get("/buckets/default", &bob).expect(200).data();

    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<Acked>>> = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    for w in 0..3 {
        let (stop, acked) = (stop.clone(), acked.clone());
        let endpoint = live.endpoint().clone();
        let user = if w == 0 { alice.clone() } else { bob.clone() };
        writers.push(std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) && i < 2000 {
                let id = format!("w{w}-{i}");
                let body = json!({"data": {"w": w, "i": i, "s": "é".repeat(i % 7)},
                                  "permissions": {"read": ["/buckets/b/groups/friends"]}});
                let resp = Request::new(
                    &endpoint,
                    "PUT",
                    &format!("/buckets/b/collections/c/records/{id}"),
                )
                .user(&user)
                .json(&body)
                .send();
                assert_eq!(resp.status, 201, "{resp}");
                acked.lock().unwrap().push(Acked {
                    id,
                    body: resp.json(),
                });
                i += 1;
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(400));
    let snap = dir.path().join("snap.tar");
    let acked_before = acked.lock().unwrap().len();
    let report = cairn_ok(&["snapshot", "--data", p(&data), "--out", p(&snap), "--quiet"]);
    let acked_at_end = acked.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked_before > 10, "writers too slow: {acked_before}");
    assert!(acked.len() > acked_at_end, "no write after the snapshot");
    let h = head_offset(&report, "log head:");

    // Which records are at or before the snapshot's offset, by the log.
    let offsets = offsets_of(&data, "/buckets/b/collections/c/records/*");
    let (inside, outside): (Vec<&Acked>, Vec<&Acked>) =
        acked.iter().partition(|a| offsets[&a.id] <= h);
    assert!(
        inside.len() >= acked_before,
        "a write acknowledged before the snapshot started is past its offset"
    );
    assert!(
        !outside.is_empty(),
        "every write landed before the snapshot offset"
    );

    let restored_dir = dir.path().join("restored");
    let out = cairn_ok(&["restore", p(&snap), "--into", p(&restored_dir), "--quiet"]);
    assert_eq!(head_offset(&out, "restored head:"), h, "{out}");
    let restored = Server::start_with(&restored_dir, opts, None);

    // Same user ids and personal bucket: the secrets came along.
    assert_eq!(restored.userid(&bob), bob_id);
    assert_eq!(
        restored.get("/buckets/default", &bob).expect(200).data(),
        personal
    );
    for a in &inside {
        let resp = restored.get(&format!("{coll}/records/{}", a.id), &alice);
        assert_eq!(
            resp.status, 200,
            "{} acknowledged before the snapshot offset is missing\n{resp}",
            a.id
        );
        let got = resp.json();
        assert_eq!(got["data"], a.body["data"], "{}", a.id);
        // Permissions as the same user sees them on the live server.
        let url = format!("{coll}/records/{}", a.id);
        let was = live.get(&url, &alice).expect(200).json();
        assert_eq!(
            sorted_perms(&got["permissions"]),
            sorted_perms(&was["permissions"])
        );
    }
    for a in &outside {
        let resp = restored.get(&format!("{coll}/records/{}", a.id), &alice);
        assert_eq!(
            resp.status, 404,
            "{} written after the snapshot offset is there\n{resp}",
            a.id
        );
    }
    // Objects written before the writers answer identically on both.
    for url in [
        "/buckets/b",
        "/buckets/b/groups/friends",
        coll,
        "/buckets/b/collections/c/records/keep",
    ] {
        let (a, b) = (
            live.get(url, &alice).expect(200),
            restored.get(url, &alice).expect(200),
        );
        assert_eq!(a.json(), b.json(), "{url}");
        assert_eq!(a.header("ETag"), b.header("ETag"), "{url}");
    }
    // `_since` from before the writers: the restored server answers the
    // live answer restricted to the records at or before the offset,
    // in the same order, tombstone included.
    let since = lm(&live
        .get(&format!("{coll}/records/keep"), &alice)
        .expect(200)
        .data());
    let q = format!("{coll}/records?_since={since}&_limit=10000");
    let live_list = live.get(&q, &alice).expect(200).json();
    let kept: std::collections::HashSet<&str> = inside.iter().map(|a| a.id.as_str()).collect();
    let expected: Vec<&Value> = live_list["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| kept.contains(o["id"].as_str().unwrap()) || o["id"] == json!("gone"))
        .collect();
    let got = restored.get(&q, &alice).expect(200);
    let got_list = got.json();
    let got: Vec<&Value> = got_list["data"].as_array().unwrap().iter().collect();
    assert_eq!(got, expected);
    // The list timestamp is the newest record inside.
    let newest = inside.iter().map(|a| lm(&a.body["data"])).max().unwrap();
    let etag = restored
        .get(&format!("{coll}/records"), &alice)
        .expect(200)
        .etag();
    assert_eq!(etag, newest);
    // And the restored log verifies to the same head.
    let v = cairn_ok(&["log", "verify", "--data", p(&restored_dir), "--quiet"]);
    assert_eq!(head_offset(&v, "chain head:"), h);
}

/// The state of a collection as a client sees it.
fn state(s: &Server, user: &User, coll: &str) -> (Value, u64, Value) {
    let list = s.get(&format!("{coll}/records?_sort=id"), user).expect(200);
    let since = s
        .get(&format!("{coll}/records?_since=0&_sort=id"), user)
        .expect(200);
    (
        list.json()["data"].clone(),
        list.etag(),
        since.json()["data"].clone(),
    )
}

#[test]
fn replay_until_t_serves_what_the_live_server_answered_at_t() {
    if skip_external() {
        return;
    }
    let dir = tempdir("pitr");
    let data = dir.path().join("data");
    let live = Server::start_on(&data);
    let alice = User::new("alice", "a-pw");
    live.put("/buckets/b", &alice, json!({})).expect(201);
    let coll = "/buckets/b/collections/c";
    live.put(coll, &alice, json!({})).expect(201);
    let mut moments = Vec::new();
    for k in 0..5 {
        for i in 0..4 {
            live.put(
                &format!("{coll}/records/r{k}-{i}"),
                &alice,
                json!({"data": {"k": k, "i": i}}),
            )
            .expect(201);
        }
        if k > 0 {
            live.patch(
                &format!("{coll}/records/r{}-0", k - 1),
                &alice,
                json!({"data": {"patched": k}}),
            )
            .expect(200);
            live.delete(&format!("{coll}/records/r{}-1", k - 1), &alice)
                .expect(200);
        }
        let seen = state(&live, &alice, coll);
        let t = now_ms();
        moments.push((t, seen));
        // Writes after T get a later commit time.
        std::thread::sleep(Duration::from_millis(5));
    }
    for (k, form) in [(1usize, "ms"), (3, "rfc3339")] {
        let (t, expected) = &moments[k];
        let until = if form == "ms" {
            t.to_string()
        } else {
            rfc3339(*t)
        };
        let into = dir.path().join(format!("at-{k}"));
        // The live server keeps running: replay reads without its lock.
        cairn_ok(&[
            "log",
            "replay",
            "--data",
            p(&data),
            "--until",
            &until,
            "--into",
            p(&into),
            "--quiet",
        ]);
        let mut at = Server::start_on(&into);
        assert_eq!(
            &state(&at, &alice, coll),
            expected,
            "state at moment {k} ({until})"
        );
        at.terminate();
    }
    // Before the first write: an empty but valid data directory.
    let into = dir.path().join("at-start");
    cairn_ok(&[
        "log",
        "replay",
        "--data",
        p(&data),
        "--until",
        "1000",
        "--into",
        p(&into),
        "--quiet",
    ]);
    let v = cairn_ok(&["log", "verify", "--data", p(&into), "--quiet"]);
    assert!(v.contains("records:    0"), "{v}");
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of epoch ms (a test-side implementation).
fn rfc3339(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil from days (H. Hinnant).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// (offset, start, end) of every record frame of a segment file.
fn frames(bytes: &[u8]) -> Vec<(u64, usize, usize)> {
    let mut out = Vec::new();
    let mut pos = 72;
    while pos + 64 <= bytes.len() {
        let len = u32::from_le_bytes(bytes[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let offset = u64::from_le_bytes(bytes[pos + 8..pos + 16].try_into().unwrap());
        let kind = bytes[pos + 24];
        if kind != 1 {
            break;
        }
        let end = pos + ((64 + len + 7) & !7);
        out.push((offset, pos, end));
        pos = end;
    }
    out
}

fn only_segment(data: &Path) -> PathBuf {
    let mut segs: Vec<PathBuf> = std::fs::read_dir(data.join("log"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    assert_eq!(segs.len(), 1, "{segs:?}");
    segs.pop().unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A stopped server's data directory with `n` writes.
fn stopped_data(dir: &Path, n: usize) -> PathBuf {
    let data = dir.join("data");
    let mut s = Server::start_on(&data);
    let alice = User::new("alice", "a-pw");
    s.put("/buckets/b", &alice, json!({})).expect(201);
    s.put("/buckets/b/collections/c", &alice, json!({}))
        .expect(201);
    for i in 0..n {
        s.put(
            &format!("/buckets/b/collections/c/records/r{i}"),
            &alice,
            json!({"data": {"i": i}}),
        )
        .expect(201);
    }
    s.terminate();
    data
}

/// A change made to a segment's bytes.
type Tamper = dyn Fn(&mut Vec<u8>);

#[test]
fn verify_names_the_offset_of_a_changed_deleted_or_reordered_record() {
    if skip_external() {
        return;
    }
    let dir = tempdir("tamper");
    let data = stopped_data(dir.path(), 20);
    let report = cairn_ok(&["log", "verify", "--data", p(&data), "--quiet"]);
    assert!(report.contains("records:    22"), "{report}");
    assert!(report.trim_end().ends_with("OK"), "{report}");
    let bytes = std::fs::read(only_segment(&data)).unwrap();
    let fr = frames(&bytes);
    assert_eq!(fr.len(), 22);
    let k = 11u64;
    let (_, start, end) = fr[(k - 1) as usize];
    let (_, _, next_end) = fr[k as usize];

    let tampered: [(&str, Box<Tamper>); 3] = [
        (
            "one changed byte",
            Box::new(move |b: &mut Vec<u8>| b[start + 64 + 5] ^= 1),
        ),
        (
            "a deleted record",
            Box::new(move |b: &mut Vec<u8>| {
                b.drain(start..end);
            }),
        ),
        (
            "two reordered records",
            Box::new(move |b: &mut Vec<u8>| {
                let (a, c) = (b[start..end].to_vec(), b[end..next_end].to_vec());
                let swapped: Vec<u8> = c.into_iter().chain(a).collect();
                b.splice(start..next_end, swapped);
            }),
        ),
    ];
    for (what, tamper) in tampered {
        let copy = dir.path().join(what.replace(' ', "-"));
        copy_dir(&data, &copy);
        let seg = only_segment(&copy);
        let mut b = std::fs::read(&seg).unwrap();
        tamper(&mut b);
        std::fs::write(&seg, &b).unwrap();
        let err = cairn_fails(&["log", "verify", "--data", p(&copy), "--quiet"], 3);
        assert!(
            err.contains(&format!("damaged at offset {k}")),
            "{what}: {err}"
        );
        // And no checkpoint is given for a damaged log.
        let out = cairn(&["log", "checkpoint", "--data", p(&copy), "--quiet"]);
        assert_eq!(
            out.status.code(),
            Some(3),
            "{what}: no checkpoint of a damaged log"
        );
    }
}

#[test]
fn a_checkpoint_catches_a_rewritten_chain_and_a_cut_tail() {
    if skip_external() {
        return;
    }
    let dir = tempdir("checkpoint");
    let data = stopped_data(dir.path(), 20);
    let cp_text = cairn_ok(&["log", "checkpoint", "--data", p(&data), "--quiet"]);
    let cp: Value = serde_json::from_str(cp_text.trim()).unwrap();
    assert_eq!(cp["offset"], json!(22));
    let cp_file = dir.path().join("cp.json");
    std::fs::write(&cp_file, &cp_text).unwrap();
    let ok = cairn_ok(&[
        "log",
        "verify",
        "--data",
        p(&data),
        "--against",
        p(&cp_file),
        "--quiet",
    ]);
    assert!(ok.contains("is extended by this log"), "{ok}");

    // Rewrite history from offset 10 on with cairn itself: keep the first
    // 9 records, then write different ones, more than before.
    let forged = dir.path().join("forged");
    cairn_ok(&[
        "log",
        "replay",
        "--data",
        p(&data),
        "--until-offset",
        "9",
        "--into",
        p(&forged),
        "--quiet",
    ]);
    let mut s = Server::start_on(&forged);
    let mallory = User::new("alice", "a-pw");
    for i in 0..30 {
        s.put(
            &format!("/buckets/b/collections/c/records/x{i}"),
            &mallory,
            json!({}),
        )
        .expect(201);
    }
    s.terminate();
    // The forged log alone is sound...
    cairn_ok(&["log", "verify", "--data", p(&forged), "--quiet"]);
    // ...but does not extend the checkpoint (inline JSON works too).
    let err = cairn_fails(
        &[
            "log",
            "verify",
            "--data",
            p(&forged),
            "--against",
            cp_text.trim(),
            "--quiet",
        ],
        3,
    );
    assert!(err.contains("rewritten"), "{err}");

    // A log cut back by a few records is caught the same way.
    let cut = dir.path().join("cut");
    cairn_ok(&[
        "log",
        "replay",
        "--data",
        p(&data),
        "--until-offset",
        "17",
        "--into",
        p(&cut),
        "--quiet",
    ]);
    cairn_ok(&["log", "verify", "--data", p(&cut), "--quiet"]);
    let err = cairn_fails(
        &[
            "log",
            "verify",
            "--data",
            p(&cut),
            "--against",
            p(&cp_file),
            "--quiet",
        ],
        3,
    );
    assert!(err.contains("removed from the end"), "{err}");
}

#[test]
fn a_truncated_or_corrupted_snapshot_is_refused_and_nothing_is_written() {
    if skip_external() {
        return;
    }
    let dir = tempdir("badsnap");
    let data = stopped_data(dir.path(), 30);
    let snap = dir.path().join("good.tar");
    cairn_ok(&["snapshot", "--data", p(&data), "--out", p(&snap), "--quiet"]);
    // Never overwritten.
    let err = cairn_fails(
        &["snapshot", "--data", p(&data), "--out", p(&snap), "--quiet"],
        4,
    );
    assert!(err.contains("exists"), "{err}");
    let good = std::fs::read(&snap).unwrap();
    let manifest_at = good
        .windows(b"\"format\"".len())
        .position(|w| w == b"\"format\"")
        .expect("manifest in the archive");
    let seg_payload = 512 + 72 + 64 + 10; // first record of the first segment
    let mut cases: Vec<(String, Vec<u8>)> = Vec::new();
    for cut in [700, good.len() / 2, manifest_at + 20] {
        cases.push((format!("truncated at {cut}"), good[..cut].to_vec()));
    }
    let mut flipped = good.clone();
    flipped[seg_payload] ^= 0x40;
    cases.push(("a changed byte in the log".into(), flipped));
    let mut forged_manifest = good.clone();
    let hash_at = manifest_at
        + good[manifest_at..]
            .windows(b"\"blake3\": \"".len())
            .position(|w| w == b"\"blake3\": \"")
            .unwrap()
        + b"\"blake3\": \"".len();
    forged_manifest[hash_at] = if good[hash_at] == b'0' { b'1' } else { b'0' };
    cases.push(("a changed hash in the manifest".into(), forged_manifest));
    cases.push(("not a snapshot".into(), b"hello, world\n".repeat(100)));

    for (what, bytes) in cases {
        let file = dir.path().join("bad.tar");
        std::fs::write(&file, &bytes).unwrap();
        let into = dir.path().join("into");
        let err = cairn_fails(&["restore", p(&file), "--into", p(&into), "--quiet"], 3);
        assert!(err.contains("bad snapshot"), "{what}: {err}");
        assert!(!into.exists(), "{what}: restore wrote {}", into.display());
        // An empty directory given as target stays empty.
        std::fs::create_dir(&into).unwrap();
        cairn_fails(&["restore", p(&file), "--into", p(&into), "--quiet"], 3);
        assert_eq!(std::fs::read_dir(&into).unwrap().count(), 0, "{what}");
        std::fs::remove_dir(&into).unwrap();
    }

    // A non-empty target is refused before anything else.
    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("precious"), b"x").unwrap();
    let err = cairn_fails(&["restore", p(&snap), "--into", p(&busy), "--quiet"], 4);
    assert!(err.contains("not empty"), "{err}");
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);

    // The good one restores, and `--until-offset` restores an earlier state.
    let into = dir.path().join("ok");
    let out = cairn_ok(&["restore", p(&snap), "--into", p(&into), "--quiet"]);
    assert_eq!(head_offset(&out, "restored head:"), 32, "{out}");
    let early = dir.path().join("early");
    let out = cairn_ok(&[
        "restore",
        p(&snap),
        "--into",
        p(&early),
        "--until-offset",
        "12",
        "--quiet",
    ]);
    assert_eq!(head_offset(&out, "restored head:"), 12, "{out}");
    let mut s = Server::start_on(&early);
    let alice = User::new("alice", "a-pw");
    let list = s
        .get("/buckets/b/collections/c/records", &alice)
        .expect(200);
    assert_eq!(ids(&list.json()).len(), 10);
    s.terminate();
}

#[test]
fn show_answers_who_changed_a_record_and_how() {
    if skip_external() {
        return;
    }
    let dir = tempdir("show");
    let data = dir.path().join("data");
    let mut s = Server::start_on(&data);
    let alice = User::new("alice", "a-pw");
    let bob = User::new("bob", "b-pw");
    let bob_id = s.userid(&bob);
    s.put(
        "/buckets/b",
        &alice,
        json!({"permissions": {"write": [bob_id]}}),
    )
    .expect(201);
    s.put("/buckets/b/collections/c", &alice, json!({}))
        .expect(201);
    let rec = "/buckets/b/collections/c/records/r";
    s.put(rec, &alice, json!({"data": {"v": 1}})).expect(201);
    s.patch(rec, &bob, json!({"data": {"v": 2}})).expect(200);
    s.delete("/buckets/b/collections/c", &bob).expect(200);
    s.terminate();
    let started = Instant::now();
    let out = cairn_ok(&[
        "log",
        "show",
        "--data",
        p(&data),
        "--json",
        "--object",
        &format!("/v1{rec}"),
    ]);
    let rows: Vec<Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(rows.len(), 3, "{out}");
    assert_eq!(rows[0]["action"], json!("create"));
    assert_eq!(rows[1]["action"], json!("update"));
    assert_eq!(rows[1]["user_id"], json!(bob_id));
    assert_eq!(rows[1]["before"]["data"]["v"], json!(1));
    assert_eq!(rows[1]["data"]["v"], json!(2));
    assert_eq!(rows[2]["action"], json!("delete"));
    assert_eq!(rows[2]["cascade_of"], json!("/buckets/b/collections/c"));
    // Table, filtered by user and action.
    let table = cairn_ok(&[
        "log",
        "show",
        "--data",
        p(&data),
        "--user",
        &bob_id,
        "--action",
        "delete",
    ]);
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].starts_with("OFFSET"));
    assert!(
        lines[1].contains("/buckets/b/collections/c ") && lines[1].contains("delete"),
        "{table}"
    );
    // Bad filters are usage errors.
    cairn_fails(
        &["log", "show", "--data", p(&data), "--since", "last tuesday"],
        2,
    );
    cairn_fails(&["log", "show", "--data", p(&data), "--action", "move"], 2);
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn projections_rebuild_refuses_a_live_server_and_serves_the_same_answers_after() {
    if skip_external() {
        return;
    }
    let dir = tempdir("rebuild");
    let data = dir.path().join("data");
    let mut s = Server::start_on(&data);
    let alice = User::new("alice", "a-pw");
    let bob = User::new("bob", "b-pw");
    let coll = "/buckets/b/collections/c";
    s.put("/buckets/b", &alice, json!({})).expect(201);
    let bob_id = s.userid(&bob);
    s.put(coll, &alice, json!({"permissions": {"read": [bob_id]}}))
        .expect(201);
    for i in 0..40 {
        s.put(
            &format!("{coll}/records/r{i}"),
            &alice,
            json!({"data": {"i": i}}),
        )
        .expect(201);
    }
    for i in 0..10 {
        s.delete(&format!("{coll}/records/r{i}"), &alice)
            .expect(200);
    }
    // A live server holds the data directory: refused, nothing touched.
    let err = cairn_fails(&["projections", "rebuild", "--data", p(&data)], 4);
    assert!(err.contains("a server is running"), "{err}");
    let before_alice = state(&s, &alice, coll);
    let before_bob = state(&s, &bob, coll);
    s.terminate();

    let out = cairn_ok(&["projections", "rebuild", "--data", p(&data), "--quiet"]);
    let head = head_offset(&out, "rebuilt:");
    assert_eq!(head, 52, "{out}");
    assert!(out.contains("events:     52 from 52 records"), "{out}");
    let siblings: Vec<String> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("projections."))
        .collect();
    assert!(
        siblings.is_empty(),
        "the old store is removed: {siblings:?}"
    );

    let s = Server::start_on(&data);
    assert_eq!(state(&s, &alice, coll), before_alice);
    assert_eq!(state(&s, &bob, coll), before_bob);
    // The ten tombstones came back too (`state` compared them already,
    // among the `_since` answers).
    let since = s
        .get(&format!("{coll}/records?_since=0&deleted=true"), &alice)
        .expect(200)
        .json();
    assert_eq!(since["data"].as_array().unwrap().len(), 10);
}
