//! Configuration a Kinto operator already knows (issue 5): a server started
//! only with `KINTO_*` environment variables taken from a Kinto ini, a
//! server reading an existing Kinto ini file (`cairn serve --ini`), and
//! Kinto's start-up refusals. Spawns its own servers.

use std::process::{Command, Stdio};

use cairn_tests::server::{cairn_bin, Options};
use cairn_tests::*;
use serde_json::json;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

#[test]
fn a_server_configured_by_environment_only() {
    if Server::external_mode() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        env: env(&[
            ("KINTO_PAGINATE_BY", "5"),
            (
                "KINTO_INCLUDES",
                "kinto.plugins.accounts kinto.plugins.flush",
            ),
            ("KINTO_ACCOUNT_CREATE_PRINCIPALS", "system.Everyone"),
            ("KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT", "true"),
        ]),
        ..Options::default()
    };
    let s = Server::start_with(&dir.path().join("data"), opts, None);
    let root = s.req("GET", "/").send().expect(200).json();
    let caps: Vec<&str> = root["capabilities"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        caps,
        vec![
            "basicauth",
            "schema",
            "accounts",
            "flush_endpoint",
            "permissions_endpoint"
        ],
        "{root}"
    );
    // Sign-up is open, accounts log in.
    s.req("PUT", "/accounts/ann")
        .json(&json!({"data": {"password": "a"}}))
        .send()
        .expect(201);
    let ann = User::new("ann", "a");
    assert_eq!(s.userid(&ann), "account:ann");
    // paginate_by = 5.
    let (_, records) = new_collection(&s, &ann);
    for _ in 0..7 {
        s.post(&records, &ann, json!({"data": {}})).expect(201);
    }
    let page = s.get(&records, &ann).expect(200);
    assert_eq!(page.json()["data"].as_array().unwrap().len(), 5);
    assert!(page.header("Next-Page").is_some());
    // The permissions endpoint and flush are on.
    s.get("/permissions", &ann).expect(200);
    // Without the default_bucket plugin, `default` is an ordinary bucket id.
    let resp = s.get("/buckets/default", &ann);
    assert_403(&resp);
    assert!(root.get("user").is_none());
    assert!(s.get("/", &ann).expect(200).json()["user"]
        .get("bucket")
        .is_none());
}

const KINTO_INI: &str = "\
# An existing Kinto configuration.
[server:main]
use = egg:waitress#main
host = 127.0.0.1
port = 8888

[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.postgresql
kinto.storage_url = postgresql://postgres:postgres@localhost/postgres
kinto.includes = kinto.plugins.default_bucket
                 kinto.plugins.accounts
                 kinto.plugins.history
                 kinto.plugins.admin
kinto.paginate_by = 3
multiauth.policies = account
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.account_create_principals = system.Everyone
kinto.account_write_principals = account:root
kinto.bucket_create_principals = account:root
kinto.some_typo = 1

[loggers]
keys = root
";

#[test]
fn a_server_reading_a_kinto_ini() {
    if Server::external_mode() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ini = dir.path().join("kinto.ini");
    std::fs::write(&ini, KINTO_INI).unwrap();
    let opts = Options {
        args: vec!["--ini".into(), ini.display().to_string()],
        ..Options::default()
    };
    let s = Server::start_with(&dir.path().join("data"), opts, None);
    let root = s.req("GET", "/").send().expect(200).json();
    let caps = root["capabilities"].as_object().unwrap();
    assert!(caps.contains_key("accounts") && caps.contains_key("history"));
    assert!(
        !caps.contains_key("basicauth"),
        "only the account policy: {root}"
    );
    // Basic Auth is off: unknown credentials are anonymous.
    let stranger = User::fresh("stranger");
    assert!(s
        .get("/", &stranger)
        .expect(200)
        .json()
        .get("user")
        .is_none());
    for who in ["root", "ann"] {
        s.req("PUT", &format!("/accounts/{who}"))
            .json(&json!({"data": {"password": "pw"}}))
            .send()
            .expect(201);
    }
    let rootu = User::new("root", "pw");
    let ann = User::new("ann", "pw");
    // bucket_create_principals = account:root.
    assert_403(&s.put("/buckets/annb", &ann, json!({})));
    let bid = new_bucket(&s, &rootu);
    let records = format!("/buckets/{bid}/collections/c/records");
    s.put(&format!("/buckets/{bid}/collections/c"), &rootu, json!({}))
        .expect(201);
    for _ in 0..4 {
        s.post(&records, &rootu, json!({"data": {}})).expect(201);
    }
    assert_eq!(
        s.get(&records, &rootu).expect(200).json()["data"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    // What Cairn does not support is named at start.
    let log = s.log_tail();
    assert!(log.contains("kinto.storage_backend"), "{log}");
    assert!(log.contains("kinto.plugins.admin"), "{log}");
    assert!(log.contains("kinto.some_typo"), "{log}");
}

/// Kinto's start-up refusals, with exit status 2 and a message naming the
/// problem.
#[test]
fn inconsistent_settings_refuse_to_start() {
    if Server::external_mode() {
        return;
    }
    for (vars, needle) in [
        (
            vec![
                ("KINTO_INCLUDES", "kinto.plugins.accounts"),
                ("KINTO_MULTIAUTH_POLICIES", "basicauth account"),
            ],
            "basicauth must not come before",
        ),
        (
            vec![
                ("KINTO_INCLUDES", "kinto.plugins.accounts"),
                ("KINTO_MULTIAUTH_POLICIES", "basicauth"),
            ],
            "no policy",
        ),
        (
            vec![
                ("KINTO_INCLUDES", "kinto.plugins.accounts"),
                ("KINTO_ACCOUNT_CREATE_PRINCIPALS", "account:x"),
            ],
            "account_write_principals",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = Command::new(cairn_bin());
        cmd.args(["serve", "--port", "0", "--data"])
            .arg(dir.path())
            .stdin(Stdio::null());
        for (k, _) in std::env::vars() {
            if k.starts_with("KINTO_") {
                cmd.env_remove(k);
            }
        }
        let out = cmd.envs(env(&vars)).output().expect("run cairn");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{vars:?}: {err}");
        assert!(err.contains(needle), "{vars:?}: {err}");
    }
}
