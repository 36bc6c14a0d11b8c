//! Attachments (issue 5, kinto-attachment 9.x API) over HTTP: upload with
//! `data` and `permissions`, the record's `attachment` field, downloads,
//! replace and delete, permissions, bad uploads, the collection of files
//! no record references any more, `gzipped` / `keep_old_files`, and files
//! surviving a restart.
//!
//! Servers: one shared per test binary with `kinto_attachment` (and the
//! default bucket), a 100 kB upload limit and `attachment.folder`; owned
//! servers for the gzip / keep-old-files options and the restart. With
//! `KINTO_URL` the shared tests run against that server (a reference
//! started with `includes = kinto_attachment`); disk checks are skipped.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cairn_tests::server::Options;
use cairn_tests::*;
use serde_json::{json, Value};

const HELLO: &[u8] = b"hello, attachment\n";
const HELLO_SHA256: &str = "e54c20cfd2eca50203d4fb940d49cc38ebaa65dacdad5c45d36e098b012a6b00";
const SECOND: &[u8] = b"second version\n";
const SECOND_SHA256: &str = "66ed1142ab3b2f1cdb29e8b81c9471444a5d9e6fb657a54d089073ab8bd34e27";
const MAX_SIZE: usize = 100_000;

fn spawn(label: &str, env: &[(&str, &str)]) -> Server {
    let root = tempfile::Builder::new()
        .prefix(&format!("cairn-{label}-"))
        .tempdir()
        .expect("tempdir")
        .keep();
    let opts = Options {
        env: env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Options::default()
    };
    Server::start_with(&root.join("data"), opts, Some(&root))
}

/// The shared server with the attachments plugin.
fn s() -> &'static Server {
    static ATT: OnceLock<Server> = OnceLock::new();
    ATT.get_or_init(|| match std::env::var("KINTO_URL") {
        Ok(url) if !url.is_empty() => Server::external(&url),
        _ => spawn(
            "attachments",
            &[
                (
                    "KINTO_INCLUDES",
                    "kinto.plugins.default_bucket kinto_attachment",
                ),
                ("KINTO_ATTACHMENT_MAX_SIZE_BYTES", "100000"),
                ("KINTO_ATTACHMENT_FOLDER", "{bucket_id}/{collection_id}"),
            ],
        ),
    })
}

// ---- multipart bodies ------------------------------------------------------

const BOUNDARY: &str = "cairn-test-boundary-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body, part by part.
#[derive(Default)]
struct Form {
    body: Vec<u8>,
}

impl Form {
    fn file(mut self, name: &str, filename: Option<&str>, ct: Option<&str>, bytes: &[u8]) -> Form {
        self.body
            .extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        let mut disp = format!("Content-Disposition: form-data; name=\"{name}\"");
        if let Some(f) = filename {
            disp.push_str(&format!("; filename=\"{f}\""));
        }
        self.body.extend_from_slice(disp.as_bytes());
        self.body.extend_from_slice(b"\r\n");
        if let Some(ct) = ct {
            self.body
                .extend_from_slice(format!("Content-Type: {ct}\r\n").as_bytes());
        }
        self.body.extend_from_slice(b"\r\n");
        self.body.extend_from_slice(bytes);
        self.body.extend_from_slice(b"\r\n");
        self
    }

    /// The file part as kinto-http sends it.
    fn attachment(self, filename: &str, bytes: &[u8]) -> Form {
        self.file("attachment", Some(filename), Some("text/plain"), bytes)
    }

    fn text(self, name: &str, value: &str) -> Form {
        self.file(name, None, None, value.as_bytes())
    }

    fn bytes(mut self) -> Vec<u8> {
        self.body
            .extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
        self.body
    }
}

fn post_form(s: &Server, path: &str, user: Option<&User>, form: Form) -> Response {
    s.req("POST", path)
        .auth(user)
        .header(
            "Content-Type",
            &format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(form.bytes())
        .send()
}

fn upload(s: &Server, record: &str, user: &User, filename: &str, bytes: &[u8]) -> Response {
    post_form(
        s,
        &format!("{record}/attachment"),
        Some(user),
        Form::default().attachment(filename, bytes),
    )
}

// ---- helpers ---------------------------------------------------------------

fn capability(s: &Server) -> Value {
    s.req("GET", "/").send().expect(200).json()["capabilities"]["attachments"].clone()
}

/// `base_url` + `location`, fetched as a client does.
fn download(s: &Server, location: &str) -> Response {
    let base = capability(s)["base_url"]
        .as_str()
        .expect("base_url")
        .to_string();
    let url = format!("{base}{location}");
    let path = url
        .strip_prefix("http://")
        .and_then(|rest| rest.find('/').map(|i| rest[i..].to_string()))
        .unwrap_or_else(|| panic!("base_url {base} is not an http:// URL"));
    s.req("GET", "").raw_path(&path).send()
}

/// Where the server keeps the file a `location` names (Cairn only).
fn stored(s: &Server, location: &str) -> Option<PathBuf> {
    if s.is_external() {
        return None;
    }
    let name = location.rsplit('/').next().unwrap();
    let hash = name.split('.').next().unwrap();
    assert_eq!(hash.len(), 64, "location {location} names a blake3");
    Some(s.data_dir().join("attachments").join(&hash[..2]).join(hash))
}

/// Waits (up to 5 s) for the collector to reach `exists`.
#[track_caller]
fn assert_file_becomes(s: &Server, location: &str, exists: bool) {
    let Some(path) = stored(s, location) else {
        return;
    };
    let deadline = Instant::now() + Duration::from_secs(5);
    while path.exists() != exists {
        assert!(
            Instant::now() < deadline,
            "{} should {}exist\n{}",
            path.display(),
            if exists { "" } else { "no longer " },
            s.log_tail()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Asserts the file stays (the collector had time to act and did not).
#[track_caller]
fn assert_file_stays(s: &Server, location: &str) {
    let Some(path) = stored(s, location) else {
        return;
    };
    std::thread::sleep(Duration::from_millis(700));
    assert!(path.exists(), "{} was removed", path.display());
}

/// Asserts no file holds `content` (Cairn only: files are named by the
/// blake3 of their bytes).
#[track_caller]
fn assert_not_stored(s: &Server, content: &[u8]) {
    if s.is_external() {
        return;
    }
    let hash = blake3::hash(content).to_hex().to_string();
    let path = s
        .data_dir()
        .join("attachments")
        .join(&hash[..2])
        .join(&hash);
    assert!(!path.exists(), "{} is stored", path.display());
}

fn location(meta: &Value) -> String {
    meta["location"]
        .as_str()
        .unwrap_or_else(|| panic!("no location in {meta}"))
        .to_string()
}

// ---- tests -----------------------------------------------------------------

#[test]
fn capability_and_routes_only_when_included() {
    let cap = capability(s());
    assert_eq!(cap["description"], json!("Add file attachments to records"));
    assert_eq!(
        cap["url"],
        json!("https://github.com/Kinto/kinto-attachment/")
    );
    assert!(cap["version"].is_string(), "{cap}");
    let base = cap["base_url"].as_str().unwrap_or_default();
    assert!(
        base.starts_with("http") && base.ends_with('/'),
        "base_url {base}"
    );
    if Server::external_mode() {
        return;
    }
    assert_eq!(cap["gzipped"], json!(false));
    assert_eq!(base, format!("{}/attachments/", s().root_url()));

    // A server without the plugin has neither the capability nor the routes.
    let plain = Server::shared();
    assert!(capability(plain).is_null());
    let alice = User::fresh("alice");
    let (_, records) = new_collection(plain, &alice);
    let resp = upload(plain, &format!("{records}/r"), &alice, "a.txt", HELLO);
    assert_error(&resp, 404, 111, "Not Found", None);
    let resp = plain
        .req("GET", &format!("/attachments/{}.txt", "a".repeat(64)))
        .send();
    assert_error(&resp, 404, 111, "Not Found", None);
}

#[test]
fn upload_creates_the_record_with_data_and_permissions() {
    let s = s();
    let alice = User::fresh("alice");
    let alice_id = s.userid(&alice);
    let (bid, records) = new_collection(s, &alice);
    let record = format!("{records}/doc");
    let form = Form::default()
        .text("data", r#"{"title": "with file", "n": 1}"#)
        .text("permissions", r#"{"read": ["system.Everyone"]}"#)
        .attachment("hello.txt", HELLO);
    let resp = post_form(s, &format!("{record}/attachment"), Some(&alice), form).expect(201);
    let meta = resp.json();
    let keys: Vec<&str> = meta
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        vec!["filename", "hash", "location", "mimetype", "size"],
        "{resp}"
    );
    assert_eq!(meta["filename"], json!("hello.txt"));
    assert_eq!(meta["hash"], json!(HELLO_SHA256));
    assert_eq!(meta["mimetype"], json!("text/plain"));
    assert_eq!(meta["size"], json!(HELLO.len()));
    assert_eq!(
        resp.header("Location"),
        Some(format!("{}{record}", s.root_url()).as_str()),
        "{resp}"
    );
    let loc = location(&meta);
    if !s.is_external() {
        // Relative to base_url: `{bucket_id}/{collection_id}/<blake3>.txt`.
        let prefix = format!("{bid}/c/");
        let name = loc.strip_prefix(&prefix).unwrap_or_else(|| panic!("{loc}"));
        assert!(name.ends_with(".txt") && name.len() == 68, "{loc}");
        assert!(stored(s, &loc).unwrap().is_file());
    }

    let got = s.get(&record, &alice).expect(200);
    let data = got.data();
    assert_eq!(data["attachment"], meta, "{got}");
    assert_eq!(data["title"], json!("with file"));
    assert_eq!(data["n"], json!(1));
    assert_eq!(got.etag(), resp.etag(), "the upload's ETag is the record's");
    assert_perms(
        &got,
        json!({"read": ["system.Everyone"], "write": [alice_id]}),
    );
}

#[test]
fn upload_on_an_existing_record_keeps_its_fields() {
    let s = s();
    let alice = User::fresh("alice");
    let (_, records) = new_collection(s, &alice);
    let record = format!("{records}/r");
    s.put(&record, &alice, json!({"data": {"title": "kept", "n": 1}}))
        .expect(201);
    let form = Form::default()
        .text("data", r#"{"n": 2}"#)
        .attachment("notes.txt", SECOND);
    let resp = post_form(s, &format!("{record}/attachment"), Some(&alice), form).expect(200);
    assert_eq!(resp.json()["hash"], json!(SECOND_SHA256));
    let data = s.get(&record, &alice).expect(200).data();
    assert_eq!(data["title"], json!("kept"));
    assert_eq!(data["n"], json!(2));
    assert_eq!(data["attachment"], resp.json());
}

#[test]
fn download_returns_the_bytes() {
    let s = s();
    let alice = User::fresh("alice");
    let (_, records) = new_collection(s, &alice);
    let meta = upload(s, &format!("{records}/r"), &alice, "hello.txt", HELLO)
        .expect(201)
        .json();
    let loc = location(&meta);
    // Public to whoever has the URL, as kinto-attachment's files.
    let resp = download(s, &loc).expect(200);
    assert_eq!(resp.body, HELLO);
    if s.is_external() {
        return;
    }
    assert_eq!(resp.header("Content-Type"), Some("text/plain"), "{resp}");
    assert_eq!(resp.header("X-Content-Type-Options"), Some("nosniff"));
    assert!(
        resp.header("Content-Security-Policy")
            .unwrap_or_default()
            .contains("sandbox"),
        "{resp}"
    );
    let etag = resp.header("ETag").expect("ETag").to_string();
    let path = format!("/attachments/{loc}");
    let head = s.req("HEAD", &path).send().expect(200);
    assert_eq!(
        head.header("Content-Length"),
        Some(HELLO.len().to_string().as_str())
    );
    assert!(head.body.is_empty());
    s.req("GET", &path)
        .header("If-None-Match", &etag)
        .send()
        .expect(304);
    // Unversioned, as Kinto's other paths: a redirect to `/v1/…`.
    let redirect = s
        .req("GET", "")
        .raw_path(&format!("/attachments/{loc}"))
        .send()
        .expect(307);
    assert!(redirect
        .header("Location")
        .unwrap_or_default()
        .ends_with(&format!("/v1/attachments/{loc}")));
    // A name that is no stored file.
    let missing = s
        .req("GET", &format!("/attachments/{}.txt", "0".repeat(64)))
        .send();
    assert_error(&missing, 404, 111, "Not Found", None);
    assert_error(
        &s.req("GET", "/attachments/not-a-hash.txt").send(),
        404,
        111,
        "Not Found",
        None,
    );
    assert_error(
        &s.req("PUT", &path).send(),
        405,
        115,
        "Method Not Allowed",
        None,
    );
}

#[test]
fn replace_and_delete_collect_the_old_files() {
    let s = s();
    let alice = User::fresh("alice");
    let (_, records) = new_collection(s, &alice);
    let record = format!("{records}/r");
    let first = upload(
        s,
        &record,
        &alice,
        "v1.txt",
        b"first file of replace test\n",
    )
    .expect(201)
    .json();
    let second = upload(
        s,
        &record,
        &alice,
        "v2.txt",
        b"second file of replace test\n",
    )
    .expect(200)
    .json();
    assert_ne!(first["location"], second["location"]);
    assert_eq!(s.get(&record, &alice).data()["attachment"], second);
    download(s, &location(&second)).expect(200);
    assert_file_becomes(s, &location(&first), false);
    assert_file_becomes(s, &location(&second), true);

    let resp = s
        .req("DELETE", &format!("{record}/attachment"))
        .user(&alice)
        .send()
        .expect(204);
    assert!(resp.body.is_empty(), "{resp}");
    let data = s.get(&record, &alice).expect(200).data();
    assert_eq!(data["attachment"], Value::Null, "{data}");
    assert_eq!(resp.etag(), lm(&data));
    assert_file_becomes(s, &location(&second), false);
    if !s.is_external() {
        let gone = download(s, &location(&second));
        assert_error(&gone, 404, 111, "Not Found", None);
    }

    // As kinto-attachment (its PATCH falls back to a PUT): on a missing
    // record, DELETE creates it with `attachment: null`.
    let missing = format!("{records}/never-uploaded");
    s.req("DELETE", &format!("{missing}/attachment"))
        .user(&alice)
        .send()
        .expect(204);
    let data = s.get(&missing, &alice).expect(200).data();
    assert_eq!(data["attachment"], Value::Null, "{data}");
}

#[test]
fn deleting_records_collections_and_buckets_collects_files() {
    let s = s();
    let alice = User::fresh("alice");
    let (bid, records) = new_collection(s, &alice);
    s.put(&format!("/buckets/{bid}/collections/d"), &alice, json!({}))
        .expect(201);
    let up = |record: &str, content: &str| {
        location(
            &upload(s, record, &alice, "f.txt", content.as_bytes())
                .expect(201)
                .json(),
        )
    };
    let by_record = up(&format!("{records}/r1"), "gc: record delete");
    let by_put = up(&format!("{records}/r2"), "gc: replaced by a PUT");
    let by_collection = up(
        &format!("/buckets/{bid}/collections/d/records/r"),
        "gc: collection delete",
    );
    let by_bucket = up(&format!("{records}/r3"), "gc: bucket delete");

    s.delete(&format!("{records}/r1"), &alice).expect(200);
    assert_file_becomes(s, &by_record, false);
    // A plain PUT without `attachment` drops the reference too.
    s.put(&format!("{records}/r2"), &alice, json!({"data": {}}))
        .expect(200);
    assert_file_becomes(s, &by_put, false);
    s.delete(&format!("/buckets/{bid}/collections/d"), &alice)
        .expect(200);
    assert_file_becomes(s, &by_collection, false);
    assert_file_becomes(s, &by_bucket, true);
    s.delete(&format!("/buckets/{bid}"), &alice).expect(200);
    assert_file_becomes(s, &by_bucket, false);
}

#[test]
fn the_same_content_is_stored_once() {
    let s = s();
    let alice = User::fresh("alice");
    let (_, records) = new_collection(s, &alice);
    let content = format!("shared by two records {}\n", fresh_id("x"));
    let a = upload(
        s,
        &format!("{records}/a"),
        &alice,
        "a.txt",
        content.as_bytes(),
    )
    .expect(201)
    .json();
    let b = upload(
        s,
        &format!("{records}/b"),
        &alice,
        "b.txt",
        content.as_bytes(),
    )
    .expect(201)
    .json();
    assert_eq!(a["location"], b["location"]);
    assert_eq!(a["hash"], b["hash"]);
    s.delete(&format!("{records}/a"), &alice).expect(200);
    assert_file_stays(s, &location(&b));
    download(s, &location(&b)).expect(200);
    s.delete(&format!("{records}/b"), &alice).expect(200);
    assert_file_becomes(s, &location(&b), false);
}

#[test]
fn permissions_to_upload_and_delete() {
    let s = s();
    let alice = User::fresh("alice");
    let bob = User::fresh("bob");
    let bob_id = s.userid(&bob);
    let (bid, records) = new_collection(s, &alice);
    let mine = format!("{records}/alices");
    upload(s, &mine, &alice, "a.txt", HELLO).expect(201);
    let refused = format!("refused upload {}", fresh_id("x")).into_bytes();

    // Anonymous: 401; another user: 403 — for a new and an existing record.
    let anon = post_form(
        s,
        &format!("{records}/new/attachment"),
        None,
        Form::default().attachment("a.txt", &refused),
    );
    assert_401(&anon);
    assert_403(&upload(
        s,
        &format!("{records}/new"),
        &bob,
        "b.txt",
        &refused,
    ));
    assert_403(&upload(s, &mine, &bob, "b.txt", &refused));
    assert_403(
        &s.req("DELETE", &format!("{mine}/attachment"))
            .user(&bob)
            .send(),
    );
    assert_401(&s.req("DELETE", &format!("{mine}/attachment")).send());
    // Refused uploads leave nothing on disk.
    assert_not_stored(s, &refused);

    // `record:create` on the collection: bob may attach to a new record
    // (and becomes its writer), still not to alice's.
    s.patch(
        &format!("/buckets/{bid}/collections/c"),
        &alice,
        json!({"permissions": {"record:create": [bob_id]}}),
    )
    .expect(200);
    let bobs = format!("{records}/bobs");
    upload(s, &bobs, &bob, "b.txt", b"bob's own bytes").expect(201);
    let got = s.get(&bobs, &bob).expect(200);
    assert_perms(&got, json!({"write": [bob_id]}));
    assert_403(&upload(s, &mine, &bob, "b.txt", b"bob's bytes"));

    // Read access is not enough; write on the record is.
    s.patch(&mine, &alice, json!({"permissions": {"read": [bob_id]}}))
        .expect(200);
    assert_403(&upload(s, &mine, &bob, "b.txt", b"bob's bytes"));
    s.patch(&mine, &alice, json!({"permissions": {"write": [bob_id]}}))
        .expect(200);
    upload(s, &mine, &bob, "b.txt", b"bob's replacement").expect(200);
    s.req("DELETE", &format!("{mine}/attachment"))
        .user(&bob)
        .send()
        .expect(204);

    // A missing bucket hides its existence; a missing collection is a 404
    // for who may read the bucket.
    assert_403(&upload(
        s,
        &format!("/buckets/{}/collections/c/records/r", fresh_id("nob")),
        &alice,
        "a.txt",
        HELLO,
    ));
    let resp = upload(
        s,
        &format!("/buckets/{bid}/collections/nope/records/r"),
        &alice,
        "a.txt",
        HELLO,
    );
    assert_error(&resp, 404, 111, "Not Found", None);
}

#[test]
fn bad_uploads_get_clean_errors_and_store_nothing() {
    let s = s();
    let alice = User::fresh("alice");
    let (_, records) = new_collection(s, &alice);
    let record = format!("{records}/r");
    let path = format!("{record}/attachment");
    // Each refused upload sends this content (the big one excepted).
    let content = format!("bad upload {}", fresh_id("x")).into_bytes();
    let content = content.as_slice();

    // Not multipart.
    let resp = s.post(&path, &alice, json!({"data": {}}));
    let body = assert_error(
        &resp,
        400,
        107,
        "Bad Request",
        Some("Content-Type should be multipart/form-data"),
    );
    assert!(body.get("details").is_none(), "{resp}");

    let bad = |form: Form| post_form(s, &path, Some(&alice), form);
    assert_error(
        &bad(Form::default().file("file", Some("a.txt"), None, content)),
        400,
        109,
        "Bad Request",
        Some("Attachment missing."),
    );
    let body = assert_400(&bad(Form::default().file(
        "attachment",
        None,
        None,
        content,
    )));
    assert_eq!(body["message"], json!("body: Filename is required."));
    assert_eq!(
        body["details"],
        json!([{"location": "body", "name": null, "description": "Filename is required."}])
    );
    let body = assert_400(&bad(Form::default().attachment("setup.exe", content)));
    assert_eq!(
        body["message"],
        json!("body: File extension is not allowed.")
    );
    let body = assert_400(&bad(Form::default().attachment("noext", content)));
    assert_eq!(
        body["message"],
        json!("body: File extension is not allowed.")
    );
    let big = vec![b'x'; MAX_SIZE + 1];
    let body = assert_400(&bad(Form::default().attachment("big.txt", &big)));
    assert_eq!(
        body["message"],
        json!(format!(
            "body: File size ({} bytes) exceeds the limit ({MAX_SIZE} bytes).",
            MAX_SIZE + 1
        ))
    );
    let ok = || Form::default().attachment("a.txt", content);
    let resp = bad(ok().text("data", "{not json"));
    let body = assert_error(&resp, 400, 109, "Bad Request", None);
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("body: data is not valid JSON ("),
        "{resp}"
    );
    assert_error(
        &bad(ok().file("data", Some("data.json"), None, b"{}")),
        400,
        109,
        "Bad Request",
        Some("body: 'data' field should be passed as form data, not files"),
    );
    assert_error(
        &bad(ok().text("extra", "1")),
        400,
        109,
        "Bad Request",
        Some("body: 'extra' not in ('data', 'permissions')"),
    );
    assert_400(&bad(ok().text("permissions", r#"{"bogus": ["x"]}"#)));
    assert_400(&bad(ok().text("data", r#"{"id": "other"}"#)));
    // Malformed multipart (a boundary that never comes).
    let resp = s
        .req("POST", &path)
        .user(&alice)
        .header("Content-Type", "multipart/form-data; boundary=nowhere")
        .body(b"--elsewhere\r\n\r\n".to_vec())
        .send();
    assert_eq!(resp.status, 400, "{resp}");
    // Other methods.
    let resp = s.get(&path, &alice);
    assert_error(&resp, 405, 115, "Method Not Allowed", None);
    assert_eq!(resp.header("Allow"), Some("POST, DELETE, OPTIONS"));

    // Nothing was created, nothing stored.
    assert_404(&s.get(&record, &alice), "r", "record");
    assert_not_stored(s, content);
    assert_not_stored(s, &big);
}

#[test]
fn uploads_under_the_personal_bucket() {
    let s = s();
    let alice = User::fresh("alice");
    let resp = upload(
        s,
        "/buckets/default/collections/files/records/r",
        &alice,
        "hello.txt",
        HELLO,
    )
    .expect(201);
    let bucket = s.get("/", &alice).json()["user"]["bucket"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        resp.header("Location"),
        Some(
            format!(
                "{}/buckets/{bucket}/collections/files/records/r",
                s.root_url()
            )
            .as_str()
        )
    );
    let data = s
        .get("/buckets/default/collections/files/records/r", &alice)
        .expect(200)
        .data();
    assert_eq!(data["attachment"], resp.json());
}

#[test]
fn gzipped_files_and_keep_old_files() {
    if Server::external_mode() {
        return;
    }
    let s = spawn(
        "attachments-gz",
        &[
            ("KINTO_INCLUDES", "kinto_attachment"),
            ("KINTO_ATTACHMENT_GZIPPED", "true"),
            ("KINTO_ATTACHMENT_KEEP_OLD_FILES", "true"),
        ],
    );
    assert_eq!(capability(&s)["gzipped"], json!(true));
    let alice = User::fresh("alice");
    let (_, records) = new_collection(&s, &alice);
    let record = format!("{records}/r");
    let meta = upload(&s, &record, &alice, "hello.txt", HELLO)
        .expect(201)
        .json();
    assert_eq!(meta["filename"], json!("hello.txt.gz"));
    assert_eq!(meta["mimetype"], json!("application/x-gzip"));
    assert_eq!(
        meta["original"],
        json!({"filename": "hello.txt", "hash": HELLO_SHA256, "mimetype": "text/plain",
               "size": HELLO.len()})
    );
    let loc = location(&meta);
    assert!(loc.ends_with(".gz"), "{loc}");
    let got = download(&s, &loc).expect(200);
    assert_eq!(got.body.len() as u64, meta["size"].as_u64().unwrap());
    assert_eq!(&got.body[..2], &[0x1f, 0x8b], "gzip magic");
    assert_eq!(got.header("Content-Type"), Some("application/gzip"));

    // keep_old_files: replaced and deleted files stay.
    let second = upload(&s, &record, &alice, "v2.txt", SECOND)
        .expect(200)
        .json();
    s.delete(&record, &alice).expect(200);
    assert_file_stays(&s, &loc);
    assert_file_becomes(&s, &location(&second), true);
    download(&s, &loc).expect(200);
}

#[test]
fn files_survive_a_restart_and_strays_are_collected() {
    if Server::external_mode() {
        return;
    }
    // Owned directory: the harness removes a cleanup directory when the
    // process it belongs to stops, restarts included.
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        env: vec![("KINTO_INCLUDES".into(), "kinto_attachment".into())],
        ..Options::default()
    };
    let mut s = Server::start_with(&dir.path().join("data"), opts, None);
    let alice = User::fresh("alice");
    let (_, records) = new_collection(&s, &alice);
    let meta = upload(&s, &format!("{records}/r"), &alice, "hello.txt", HELLO)
        .expect(201)
        .json();
    let loc = location(&meta);
    // A file no record references, as a crash between an upload's write
    // and its commit would leave.
    let stray_hash = "ab".repeat(32);
    let stray_dir = s.data_dir().join("attachments").join("ab");
    std::fs::create_dir_all(&stray_dir).unwrap();
    std::fs::write(stray_dir.join(&stray_hash), b"stray").unwrap();

    s.restart();
    let got = download(&s, &loc).expect(200);
    assert_eq!(got.body, HELLO);
    assert_eq!(
        s.get(&format!("{records}/r"), &alice).data()["attachment"],
        meta
    );
    assert_file_becomes(&s, &format!("{stray_hash}.txt"), false);
    assert_file_becomes(&s, &loc, true);
    // The collector follows the log after a restart too.
    s.delete(&format!("{records}/r"), &alice).expect(200);
    assert_file_becomes(&s, &loc, false);
}
