//! The accounts plugin over HTTP (issue 5): sign-up, login, the rights of
//! owners, others and administrators, password changes, the wrong-password
//! fall-through to Basic Auth, and (Cairn only) the removal of a deleted
//! account's principal from every ACL and group. Runs against
//! `Server::with_plugins()`, or the reference with `KINTO_URL`.

use cairn_tests::*;
use serde_json::json;

fn s() -> &'static Server {
    Server::with_plugins()
}

/// A fresh account: (its credentials, its user id).
fn signup(s: &Server) -> (User, String) {
    let user = User::new(&fresh_id("acc"), "acc-pw-1");
    let resp = s
        .req("PUT", &format!("/accounts/{}", user.name))
        .json(&json!({"data": {"password": user.password}}))
        .send()
        .expect(201);
    let body = resp.json();
    assert_eq!(body["data"]["id"], json!(user.name), "{resp}");
    assert_eq!(
        body["permissions"],
        json!({"write": [format!("account:{}", user.name)]}),
        "{resp}"
    );
    let hash = body["data"]["password"].as_str().unwrap_or_default();
    assert!(hash.starts_with("$2b$12$"), "bcrypt hash, got {hash}");
    let id = format!("account:{}", user.name);
    (user, id)
}

fn whoami(s: &Server, user: &User) -> String {
    s.get("/", user).expect(200).json()["user"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The administrator `account:admin` (created if needed); `None` when an
/// `admin` account with another password already exists (external runs).
fn admin(s: &Server) -> Option<User> {
    let admin = User::new("admin", "admin-pw-cairn-tests");
    s.req("PUT", "/accounts/admin")
        .json(&json!({"data": {"password": admin.password}}))
        .send();
    (whoami(s, &admin) == "account:admin").then_some(admin)
}

#[test]
fn signup_then_login_as_account() {
    let s = s();
    let (bob, bob_id) = signup(s);
    assert_eq!(whoami(s, &bob), bob_id);
    let root = s.get("/", &bob).expect(200).json();
    let principals: Vec<String> =
        serde_json::from_value(root["user"]["principals"].clone()).expect("principals");
    assert!(principals.contains(&bob_id), "{root}");
    assert!(root["capabilities"]["accounts"].is_object(), "{root}");
    assert_eq!(
        root["capabilities"]["accounts"]["validation_enabled"],
        json!(false)
    );
    // POST with data.id works too (201), and answers the same object
    // afterwards to a caller who may read it (200).
    let carol = fresh_id("acc");
    let created = s
        .req("POST", "/accounts")
        .json(&json!({"data": {"id": carol, "password": "c"}, "permissions": {"read": ["system.Everyone"]}}))
        .send()
        .expect(201);
    assert_perms(
        &created,
        json!({"read": ["system.Everyone"], "write": [format!("account:{carol}")]}),
    );
    let again = s
        .req("POST", "/accounts")
        .json(&json!({"data": {"id": carol, "password": "c"}}))
        .send()
        .expect(200);
    assert_eq!(again.json()["data"], created.json()["data"]);
}

#[test]
fn listing_shows_only_ones_own_account() {
    let s = s();
    let (bob, _) = signup(s);
    signup(s);
    let resp = s.get("/accounts", &bob).expect(200);
    assert_eq!(ids(&resp.json()), vec![bob.name.clone()], "{resp}");
    assert!(resp.json()["data"][0]["password"]
        .as_str()
        .unwrap()
        .starts_with("$2b$"));
    // Anonymous: Kinto's odd 401 with errno 999 and no message.
    let anon = s.req("GET", "/accounts").send();
    assert_eq!(anon.status, 401, "{anon}");
    assert_eq!(
        anon.json(),
        json!({"code": 401, "errno": 999, "error": "Cannot read accounts."})
    );
    // A Basic Auth user has no account: an empty list.
    let basic = User::fresh("basic");
    assert_eq!(
        ids(&s.get("/accounts", &basic).expect(200).json()),
        Vec::<String>::new()
    );
}

#[test]
fn wrong_password_falls_through_to_basic_auth() {
    let s = s();
    let (bob, bob_id) = signup(s);
    let wrong = User::new(&bob.name, "not-the-password");
    let id = whoami(s, &wrong);
    assert!(id.starts_with("basicauth:"), "{id}");
    assert_ne!(id, bob_id);
    // ...a different user, who cannot touch bob's account.
    let resp = s.get(&format!("/accounts/{}", bob.name), &wrong);
    assert_403(&resp);
}

#[test]
fn others_accounts_are_out_of_reach() {
    let s = s();
    let (bob, _) = signup(s);
    let (dave, _) = signup(s);
    assert_403(&s.get(&format!("/accounts/{}", dave.name), &bob));
    assert_403(&s.get(&format!("/accounts/{}", fresh_id("nobody")), &bob));
    // Creating or replacing another id while logged in: 400.
    for method in ["PUT", "POST"] {
        let (path, body) = if method == "PUT" {
            (
                format!("/accounts/{}", dave.name),
                json!({"data": {"password": "x"}}),
            )
        } else {
            (
                "/accounts".to_string(),
                json!({"data": {"id": fresh_id("acc"), "password": "x"}}),
            )
        };
        let resp = s.req(method, &path).user(&bob).json(&body).send();
        let err = assert_400(&resp);
        assert_eq!(
            err["message"],
            json!("data.id in body: Username and account ID do not match."),
            "{resp}"
        );
    }
    // Anonymous replace of an existing account: 401.
    let resp = s
        .req("PUT", &format!("/accounts/{}", dave.name))
        .json(&json!({"data": {"password": "x"}}))
        .send();
    assert_401(&resp);
    assert_403(&s.delete(&format!("/accounts/{}", dave.name), &bob));
    assert_eq!(whoami(s, &dave), format!("account:{}", dave.name));
}

#[test]
fn invalid_bodies_and_ids() {
    let s = s();
    let resp = s
        .req("POST", "/accounts")
        .json(&json!({"data": {"password": "x"}}))
        .send();
    assert_eq!(
        assert_400(&resp)["message"],
        json!("data.id in body: Required")
    );
    let resp = s
        .req("PUT", &format!("/accounts/{}", fresh_id("acc")))
        .json(&json!({"data": {}}))
        .send();
    assert_eq!(
        assert_400(&resp)["message"],
        json!("data.password in body: Required")
    );
    let resp = s
        .req("PUT", "/accounts/bad%20user")
        .json(&json!({"data": {"password": "x"}}))
        .send();
    assert_eq!(
        assert_400(&resp)["message"],
        json!("path: Invalid object id")
    );
    // E-mail addresses are valid account ids.
    let email = format!("{}@example.com", fresh_id("me"));
    s.req("PUT", &format!("/accounts/{email}"))
        .json(&json!({"data": {"password": "x"}}))
        .send()
        .expect(201);
}

#[test]
fn password_change_takes_effect_at_once() {
    let s = s();
    let (bob, bob_id) = signup(s);
    assert_eq!(whoami(s, &bob), bob_id); // now in the verification cache
    let before = s
        .get(&format!("/accounts/{}", bob.name), &bob)
        .expect(200)
        .json();
    // PATCH without password keeps the hash.
    let resp = s
        .patch(
            &format!("/accounts/{}", bob.name),
            &bob,
            json!({"data": {"age": 3}}),
        )
        .expect(200);
    assert_eq!(resp.json()["data"]["password"], before["data"]["password"]);
    assert_eq!(resp.json()["data"]["age"], json!(3));
    let resp = s
        .patch(
            &format!("/accounts/{}", bob.name),
            &bob,
            json!({"data": {"password": "acc-pw-2"}}),
        )
        .expect(200);
    assert_ne!(resp.json()["data"]["password"], before["data"]["password"]);
    assert!(
        whoami(s, &bob).starts_with("basicauth:"),
        "old password no longer an account login"
    );
    let new = User::new(&bob.name, "acc-pw-2");
    assert_eq!(whoami(s, &new), bob_id);
    // Deleting the account: its credentials stop being an account.
    s.delete(&format!("/accounts/{}", bob.name), &new)
        .expect(200);
    assert!(whoami(s, &new).starts_with("basicauth:"));
}

#[test]
fn administrators_reach_every_account() {
    let s = s();
    let Some(admin) = admin(s) else {
        eprintln!("skipped: an admin account with another password exists");
        return;
    };
    let hank = fresh_id("acc");
    let resp = s
        .put(
            &format!("/accounts/{hank}"),
            &admin,
            json!({"data": {"password": "h"}}),
        )
        .expect(201);
    // The account is its own writer, not the admin who created it.
    assert_eq!(
        resp.json()["permissions"],
        json!({"write": [format!("account:{hank}")]})
    );
    s.post(
        "/accounts",
        &admin,
        json!({"data": {"id": fresh_id("acc"), "password": "i"}}),
    )
    .expect(201);
    let (dave, _) = signup(s);
    s.get(&format!("/accounts/{}", dave.name), &admin)
        .expect(200);
    s.patch(
        &format!("/accounts/{hank}"),
        &admin,
        json!({"data": {"password": "h2"}}),
    )
    .expect(200);
    assert_eq!(
        whoami(s, &User::new(&hank, "h2")),
        format!("account:{hank}")
    );
    s.delete(&format!("/accounts/{}", dave.name), &admin)
        .expect(200);
    assert_404(
        &s.get(&format!("/accounts/{}", dave.name), &admin),
        &dave.name,
        "account",
    );
    // Without account_read_principals, listing shows the admin's own only.
    let listed = ids(&s.get("/accounts", &admin).expect(200).json());
    assert!(listed.contains(&"admin".to_string()), "{listed:?}");
    assert!(!listed.contains(&hank), "{listed:?}");
}

/// Cairn fixes a leak of the reference: a deleted account's principal is
/// removed from every ACL and group, so a new account of the same name
/// inherits nothing.
#[test]
fn deleting_an_account_removes_its_principal_everywhere() {
    if Server::external_mode() {
        eprintln!("skipped: the reference keeps the principal (spec 1.3)");
        return;
    }
    let s = s();
    let (erin, erin_id) = signup(s);
    let alice = User::fresh("alice");
    let alice_id = s.userid(&alice);
    let bid = fresh_id("b");
    s.put(
        &format!("/buckets/{bid}"),
        &alice,
        json!({"permissions": {"read": [erin_id], "write": [erin_id]}}),
    )
    .expect(201);
    s.put(
        &format!("/buckets/{bid}/groups/friends"),
        &alice,
        json!({"data": {"members": [erin_id, "someone"]}}),
    )
    .expect(201);
    s.get(&format!("/buckets/{bid}"), &erin).expect(200);
    s.delete(&format!("/accounts/{}", erin.name), &erin)
        .expect(200);

    let bucket = s.get(&format!("/buckets/{bid}"), &alice).expect(200);
    assert_perms(&bucket, json!({"write": [alice_id]}));
    let group = s
        .get(&format!("/buckets/{bid}/groups/friends"), &alice)
        .expect(200);
    assert_eq!(group.json()["data"]["members"], json!(["someone"]));

    // Same name, new account: no inherited rights.
    s.req("PUT", &format!("/accounts/{}", erin.name))
        .json(&json!({"data": {"password": "another"}}))
        .send()
        .expect(201);
    let again = User::new(&erin.name, "another");
    assert_eq!(whoami(s, &again), erin_id);
    assert_403(&s.get(&format!("/buckets/{bid}"), &again));
}

/// `cairn create-user` writes an account through the log (server stopped),
/// overwriting an existing one's password.
#[test]
fn create_user_on_the_command_line() {
    if Server::external_mode() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let env = vec![(
        "KINTO_INCLUDES".to_string(),
        "kinto.plugins.accounts".to_string(),
    )];
    let run = |args: &[&str], env: &[(String, String)]| {
        let mut cmd = std::process::Command::new(server::cairn_bin());
        cmd.arg("create-user").arg("--data").arg(&data).args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("KINTO_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().cloned())
            .stdin(std::process::Stdio::null())
            .output()
            .expect("run cairn create-user")
    };
    let out = run(&["-u", "zoe", "-p", "first"], &[]);
    assert_eq!(out.status.code(), Some(52), "accounts plugin not included");
    let out = run(&["-u", "zoe"], &env);
    assert_eq!(out.status.code(), Some(53), "no password on stdin: aborted");
    let out = run(&["-u", "zoe", "-p", "first"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = run(&["-u", "zoe", "-p", "second"], &env);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("second"));

    let opts = server::Options {
        env: env.clone(),
        ..Default::default()
    };
    let s = Server::start_with(&data, opts, None);
    assert_eq!(whoami(&s, &User::new("zoe", "second")), "account:zoe");
    assert!(whoami(&s, &User::new("zoe", "first")).starts_with("basicauth:"));
    // Only the hash is in the log.
    let mut log_bytes = Vec::new();
    for entry in std::fs::read_dir(data.join("log")).unwrap() {
        log_bytes.extend(std::fs::read(entry.unwrap().path()).unwrap_or_default());
    }
    let text = String::from_utf8_lossy(&log_bytes);
    assert!(
        !text.contains("second") && !text.contains("first"),
        "a clear password in the log"
    );
    assert!(text.contains("$2b$12$"));
}
