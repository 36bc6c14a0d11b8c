//! api-core sections 18 and 20 (issue 4): the service endpoints (`GET /v1/`,
//! heartbeats, `__version__`, `__api__`, `contribute.json`), redirects of
//! unversioned paths, CORS, and what an operator configures: `Backoff`, end
//! of service, read-only mode, the request body limit, CORS origins.

use std::collections::BTreeSet;

use cairn_tests::server::Options;
use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

fn set(list: &str) -> BTreeSet<String> {
    list.split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

/// A browser asks before `GET /v1/` with credentials and before every JSON
/// `POST /batch`: the utility endpoints and `/batch` answer preflights as
/// the resources do (the reference: 200, `null`).
#[test]
fn preflight_on_utility_endpoints_and_batch() {
    let cases = [
        ("/", "GET", "GET,HEAD,OPTIONS"),
        ("/__heartbeat__", "GET", "GET,HEAD,OPTIONS"),
        ("/__lbheartbeat__", "GET", "GET,HEAD,OPTIONS"),
        ("/__version__", "GET", "GET,HEAD,OPTIONS"),
        ("/__api__", "GET", "GET,HEAD,OPTIONS"),
        ("/contribute.json", "GET", "GET,HEAD,OPTIONS"),
        ("/batch", "POST", "POST,OPTIONS"),
    ];
    for (path, method, allowed) in cases {
        let resp = s()
            .req("OPTIONS", path)
            .header("Origin", "http://app.test")
            .header("Access-Control-Request-Method", method)
            .header(
                "Access-Control-Request-Headers",
                "Authorization, Content-Type",
            )
            .send();
        assert_eq!(resp.status, 200, "{resp}");
        assert_eq!(resp.text(), "null", "{resp}");
        assert_eq!(
            resp.header("Access-Control-Allow-Origin"),
            Some("*"),
            "{resp}"
        );
        assert_eq!(
            set(resp.header("Access-Control-Allow-Methods").unwrap_or("")),
            set(allowed),
            "{resp}"
        );
        let headers = set(resp.header("Access-Control-Allow-Headers").unwrap_or(""));
        assert!(
            headers.contains("authorization") && headers.contains("content-type"),
            "{resp}"
        );
    }
    // A method the endpoint lacks is refused as on resources.
    let resp = s()
        .req("OPTIONS", "/batch")
        .header("Origin", "http://app.test")
        .header("Access-Control-Request-Method", "GET")
        .send();
    assert_400(&resp);
}

#[test]
fn root_describes_the_server_and_the_caller() {
    let owner = User::fresh("owner");
    let anon = s().req("GET", "/").send().expect(200).json();
    let url = format!("{}/", s().root_url());
    for (key, want) in [
        ("project_name", json!("kinto")),
        ("http_api_version", json!("1.23")),
        ("project_docs", json!("https://kinto.readthedocs.io/")),
        ("url", json!(url)),
        ("config", Value::Null),
        (
            "settings",
            json!({"batch_max_requests": 25, "explicit_permissions": true, "readonly": false}),
        ),
    ] {
        assert_eq!(anon[key], want, "{key}: {anon}");
    }
    assert!(anon["project_version"].is_string(), "{anon}");
    assert!(anon.get("user").is_none(), "{anon}");
    assert!(anon.get("eos").is_none(), "{anon}");
    let caps = anon["capabilities"].as_object().expect("capabilities");
    assert!(caps.contains_key("basicauth"), "{anon}");
    for (name, cap) in caps {
        assert!(
            cap["description"].is_string() && cap["url"].is_string(),
            "capability {name}: {cap}"
        );
    }
    let me = s().get("/", &owner).expect(200).json();
    let uid = s().userid(&owner);
    assert_eq!(me["user"]["id"], json!(uid));
    assert_eq!(
        me["user"]["principals"],
        json!([uid, "system.Authenticated", "system.Everyone"])
    );
    // `/v1` redirects to `/v1/`.
    let resp = s().req("GET", "").raw_path("/v1").send();
    assert_eq!(resp.status, 307, "{resp}");
}

#[test]
fn heartbeats_version_and_contribute() {
    let pinned = [
        (
            "/__heartbeat__",
            json!({"storage": true, "permission": true, "cache": true}),
        ),
        ("/__lbheartbeat__", json!({})),
    ];
    for (path, body) in pinned {
        let resp = s().req("GET", path).send();
        assert_eq!((resp.status, resp.json()), (200, body), "{resp}");
        assert_eq!(resp.header("Content-Type"), Some("application/json"));
    }
    let version = s().req("GET", "/__version__").send().expect(200).json();
    for key in ["name", "version", "source", "commit"] {
        assert!(version[key].is_string(), "{key}: {version}");
    }
    let contribute = s().req("GET", "/contribute.json").send().expect(200).json();
    for key in [
        "name",
        "description",
        "repository",
        "participate",
        "bugs",
        "keywords",
    ] {
        assert!(contribute.get(key).is_some(), "{key}: {contribute}");
    }
    // Read-only endpoints: HEAD is fine, writes are 405.
    for path in [
        "/",
        "/__heartbeat__",
        "/__lbheartbeat__",
        "/__version__",
        "/__api__",
        "/contribute.json",
    ] {
        let resp = s().req("HEAD", path).send();
        assert_eq!(resp.status, 200, "{resp}");
        assert!(resp.body.is_empty());
        let resp = s().req("POST", path).json(&json!({})).send();
        assert_error(&resp, 405, 115, "Method Not Allowed", None);
        assert_eq!(resp.header("Allow"), Some("GET, HEAD"), "{resp}");
    }
}

/// `GET /__api__`: OpenAPI 2.0 with basePath `/v1`, every route of the
/// table with the methods it answers.
#[test]
fn api_is_swagger_2_with_every_route() {
    let resp = s().req("GET", "/__api__").send().expect(200);
    let doc = resp.json();
    assert_eq!(doc["swagger"], json!("2.0"));
    assert_eq!(doc["basePath"], json!("/v1"));
    assert_eq!(doc["host"], json!(s().endpoint().host_port), "{doc}");
    assert!(doc["info"]["title"].is_string() && doc["info"]["version"].is_string());
    let object = ["delete", "get", "head", "patch", "put"];
    let plural = ["delete", "get", "head", "post"];
    let utility = ["get", "head"];
    let routes: &[(&str, &[&str])] = &[
        ("/", &utility),
        ("/__heartbeat__", &utility),
        ("/__lbheartbeat__", &utility),
        ("/__version__", &utility),
        ("/__api__", &utility),
        ("/contribute.json", &utility),
        ("/batch", &["post"]),
        ("/buckets", &plural),
        ("/buckets/{bid}", &object),
        ("/buckets/{bid}/collections", &plural),
        ("/buckets/{bid}/collections/{cid}", &object),
        ("/buckets/{bid}/groups", &plural),
        ("/buckets/{bid}/groups/{gid}", &object),
        ("/buckets/{bid}/collections/{cid}/records", &plural),
        ("/buckets/{bid}/collections/{cid}/records/{rid}", &object),
    ];
    let paths = doc["paths"].as_object().expect("paths");
    for (template, methods) in routes {
        let item = paths
            .get(*template)
            .unwrap_or_else(|| panic!("{template} missing from /__api__"));
        let got: BTreeSet<&str> = item
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let want: BTreeSet<&str> = methods.iter().copied().collect();
        assert_eq!(got, want, "{template}");
        for (method, op) in item.as_object().unwrap() {
            assert!(op["responses"].is_object(), "{template} {method}");
            // Every {param} of the template is a path parameter.
            let params: BTreeSet<&str> = op["parameters"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|p| p["in"] == "path")
                .map(|p| p["name"].as_str().unwrap())
                .collect();
            let want: BTreeSet<&str> = template
                .split('/')
                .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
                .collect();
            assert_eq!(params, want, "{template} {method}");
        }
    }
    assert_eq!(paths.len(), routes.len(), "{:?}", paths.keys());
    // Every reference in the document resolves.
    let text = doc.to_string();
    for def in text.split("\"#/definitions/").skip(1) {
        let name = def.split('"').next().unwrap();
        assert!(doc["definitions"][name].is_object(), "#/definitions/{name}");
    }
}

/// Unversioned paths answer 307 to `/v1/…` for every method, keeping the
/// query; a client that repeats the request there (kinto-http.py does) with
/// the same method, body and credentials gets the real answer.
#[test]
fn unversioned_paths_redirect_with_307_for_every_method() {
    let owner = User::fresh("owner");
    let host = &s().endpoint().host_port;
    let bid = fresh_id("b");
    let steps = [
        (
            "PUT",
            format!("/buckets/{bid}"),
            Some(json!({"data": {"x": 1}})),
            201,
        ),
        (
            "PATCH",
            format!("/buckets/{bid}"),
            Some(json!({"data": {"y": 2}})),
            200,
        ),
        (
            "POST",
            format!("/buckets/{bid}/collections"),
            Some(json!({"data": {"id": "c"}})),
            201,
        ),
        (
            "GET",
            format!("/buckets/{bid}/collections?id=c&_fields=id"),
            None,
            200,
        ),
        ("HEAD", format!("/buckets/{bid}/collections"), None, 200),
        ("DELETE", format!("/buckets/{bid}/collections/c"), None, 200),
        ("GET", "/accounts/someone".to_string(), None, 404),
    ];
    for (method, path, body, status) in steps {
        let mut req = s().req(method, "").raw_path(&path).user(&owner);
        if let Some(b) = &body {
            req = req.json(b);
        }
        let resp = req.send();
        assert_eq!(resp.status, 307, "{resp}");
        let location = resp.header("Location").expect("Location").to_string();
        assert_eq!(location, format!("http://{host}/v1{path}"), "{resp}");
        assert_eq!(resp.header("Content-Type"), Some("text/html"), "{resp}");
        // Follow it as a client does: same method, body and credentials.
        let target = location.strip_prefix(&s().root_url()).unwrap();
        let mut again = s().req(method, target).user(&owner);
        if let Some(b) = &body {
            again = again.json(b);
        }
        let resp = again.send();
        if path.starts_with("/accounts") {
            // Without the accounts plugin: an unknown URL.
            assert_eq!(resp.status, 404, "{resp}");
        } else {
            assert_eq!(resp.status, status, "{resp}");
        }
    }
    let bucket = s()
        .get(&format!("/buckets/{bid}"), &owner)
        .expect(200)
        .data();
    assert_eq!(
        (bucket["x"].clone(), bucket["y"].clone()),
        (json!(1), json!(2))
    );
    // Trailing slash under /v1 with a body: 307, nothing written.
    let resp = s()
        .req("PUT", &format!("/buckets/{bid}/collections/d/"))
        .user(&owner)
        .json(&json!({"data": {}}))
        .send();
    assert_eq!(resp.status, 307, "{resp}");
    assert_eq!(
        s().get(&format!("/buckets/{bid}/collections/d"), &owner)
            .status,
        404
    );
}

/// Backoff on every answer, a soft end-of-life `Alert` before the date, CORS
/// origins and max age, the request body limit: one configured server.
#[test]
fn operator_settings_backoff_alert_cors_and_body_limit() {
    if Server::external_mode() {
        return;
    }
    let srv = Server::start_with_env(&[
        ("KINTO_BACKOFF", "10"),
        ("KINTO_EOS", "2999-01-01"),
        ("KINTO_EOS_MESSAGE", "Moving soon"),
        ("KINTO_EOS_URL", "https://example.com/eol"),
        ("KINTO_CORS_ORIGINS", "http://a.test http://b.test"),
        ("KINTO_CORS_MAX_AGE_SECONDS", "42"),
        ("KINTO_REQUEST_BODY_MAX_BYTES", "300"),
    ]);
    let owner = User::fresh("owner");
    let soft =
        json!({"code": "soft-eol", "message": "Moving soon", "url": "https://example.com/eol"});
    let bid = new_bucket(&srv, &owner);
    let answers = vec![
        srv.req("GET", "/").send(),
        srv.req("GET", "/__heartbeat__").send(),
        srv.get(&format!("/buckets/{bid}"), &owner),
        srv.put(&format!("/buckets/{bid}/collections/c"), &owner, json!({})),
        srv.get("/buckets/nope/collections", &owner),
        srv.req("GET", "/unknown").send(),
        srv.req("POST", "/batch")
            .json(&json!({"requests": [{"path": "/"}]}))
            .send(),
    ];
    for resp in &answers {
        assert_eq!(resp.header("Backoff"), Some("10"), "{resp}");
        let alert: Value = serde_json::from_str(resp.header("Alert").expect("Alert")).unwrap();
        assert_eq!(alert, soft, "{resp}");
    }
    // CORS: only the configured origins, echoed.
    let get = |origin: &str| {
        srv.req("GET", &format!("/buckets/{bid}"))
            .user(&owner)
            .header("Origin", origin)
            .send()
    };
    assert_eq!(
        get("http://b.test").header("Access-Control-Allow-Origin"),
        Some("http://b.test")
    );
    assert_eq!(
        get("http://c.test").header("Access-Control-Allow-Origin"),
        None
    );
    let resp = srv
        .req("OPTIONS", &format!("/buckets/{bid}"))
        .header("Origin", "http://a.test")
        .header("Access-Control-Request-Method", "PUT")
        .send();
    assert_eq!(resp.status, 200, "{resp}");
    assert_eq!(resp.header("Access-Control-Max-Age"), Some("42"), "{resp}");
    assert_eq!(
        resp.header("Access-Control-Allow-Origin"),
        Some("http://a.test"),
        "{resp}"
    );
    // The body limit: at the limit fine, one byte over 413, nothing written.
    let url = format!("/buckets/{bid}/collections/c/records/r");
    let body_of = |len: usize| {
        let base = json!({"data": {"s": ""}}).to_string().len();
        json!({"data": {"s": "x".repeat(len - base)}}).to_string()
    };
    let resp = srv
        .req("PUT", &url)
        .user(&owner)
        .header("Content-Type", "application/json")
        .body(body_of(300))
        .send();
    assert_eq!(resp.status, 201, "{resp}");
    let too_large = json!({"code": 413, "errno": 113, "error": "Request Entity Too Large",
                           "message": "Request body too large."});
    for (method, path) in [("PUT", url.clone()), ("POST", "/batch".to_string())] {
        let resp = srv
            .req(method, &path)
            .user(&owner)
            .header("Content-Type", "application/json")
            .body(body_of(301))
            .send();
        assert_eq!(
            (resp.status, resp.json()),
            (413, too_large.clone()),
            "{resp}"
        );
    }
    assert_eq!(
        srv.get(&url, &owner).data()["s"].as_str().unwrap().len(),
        300 - json!({"data": {"s": ""}}).to_string().len()
    );
}

/// Past the end-of-service date every request, even the heartbeat, gets
/// 410 errno 202 with a hard-eol `Alert`.
#[test]
fn after_the_end_of_service_everything_is_410() {
    if Server::external_mode() {
        return;
    }
    let srv = Server::start_configured(
        &[
            ("KINTO_EOS", "2000-01-01"),
            ("KINTO_EOS_MESSAGE", "Gone for good"),
        ],
        Options {
            ready_on_any_answer: true,
            ..Options::default()
        },
    );
    let owner = User::fresh("owner");
    let gone = json!({"code": 410, "errno": 202, "error": "Gone",
                      "message": "The service you are trying to connect no longer exists at this location."});
    let hard = json!({"code": "hard-eol", "message": "Gone for good", "url": "https://kinto.readthedocs.io/"});
    for resp in [
        srv.req("GET", "/").send(),
        srv.req("GET", "/__heartbeat__").send(),
        srv.req("GET", "/__lbheartbeat__").send(),
        srv.put("/buckets/b", &owner, json!({})),
        srv.req("POST", "/batch")
            .json(&json!({"requests": []}))
            .send(),
        srv.req("GET", "/unknown").send(),
    ] {
        assert_eq!((resp.status, resp.json()), (410, gone.clone()), "{resp}");
        let alert: Value = serde_json::from_str(resp.header("Alert").expect("Alert")).unwrap();
        assert_eq!(alert, hard, "{resp}");
    }
    let head = srv.req("HEAD", "/").send();
    assert_eq!(head.status, 410, "{head}");
    assert!(head.body.is_empty());
}

/// Spec 18: `GET /v1/` has `eos` when an end-of-service date is configured
/// (the reference shows the date). Cairn's root (server/src/root.rs) never
/// adds it.
#[test]
fn root_shows_the_end_of_service_date() {
    let srv = Server::start_with_env(&[("KINTO_EOS", "2999-01-01")]);
    let root = srv.req("GET", "/").send().expect(200).json();
    assert_eq!(root["eos"], json!("2999-01-01"), "{root}");
}

/// Read-only mode: every write is 405, reads work; in a batch the reads
/// still answer and the writes get 405. `backoff_percentage = 0` never
/// sends `Backoff`.
#[test]
fn readonly_refuses_every_write() {
    if Server::external_mode() {
        return;
    }
    let srv = Server::start_with_env(&[
        ("KINTO_READONLY", "true"),
        ("KINTO_BACKOFF", "10"),
        ("KINTO_BACKOFF_PERCENTAGE", "0"),
    ]);
    let owner = User::fresh("owner");
    let root = srv.get("/", &owner).expect(200).json();
    assert_eq!(root["settings"]["readonly"], json!(true));
    let not_allowed = json!({"code": 405, "errno": 115, "error": "Method Not Allowed",
                             "message": "Method not allowed on this endpoint."});
    let writes = [
        ("PUT", "/buckets/b"),
        ("PATCH", "/buckets/b"),
        ("DELETE", "/buckets/b"),
        ("POST", "/buckets"),
        ("DELETE", "/buckets"),
        ("PUT", "/buckets/b/collections/c/records/r"),
        ("POST", "/buckets/b/collections/c/records"),
        ("DELETE", "/buckets/b/collections/c/records"),
    ];
    for (method, path) in writes {
        let resp = srv.req(method, path).user(&owner).json(&json!({})).send();
        assert_eq!(
            (resp.status, resp.json()),
            (405, not_allowed.clone()),
            "{resp}"
        );
        assert!(resp.header("Backoff").is_none(), "{resp}");
    }
    srv.get("/buckets", &owner).expect(200);
    let resp = srv
        .req("POST", "/batch")
        .user(&owner)
        .json(&json!({"requests": [
            {"method": "PUT", "path": "/buckets/b"},
            {"path": "/buckets"},
            {"method": "DELETE", "path": "/buckets"},
        ]}))
        .send()
        .expect(200);
    let statuses: Vec<u64> = resp.json()["responses"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].as_u64().unwrap())
        .collect();
    assert_eq!(statuses, [405, 200, 405], "{resp}");
    assert_eq!(resp.json()["responses"][0]["body"], not_allowed);
}
