//! api-core section 20: response headers (security, caching, exposed
//! headers) and CORS, including preflight requests.

use std::collections::BTreeSet;

use cairn_tests::*;
use serde_json::json;

fn s() -> &'static Server {
    Server::shared()
}

const CSP: &str = "default-src 'none'; frame-ancestors 'none'; base-uri 'none';";

fn set(list: &str) -> BTreeSet<String> {
    list.split(',')
        .map(|h| h.trim().to_ascii_lowercase())
        .filter(|h| !h.is_empty())
        .collect()
}

fn exposed(resp: &Response) -> BTreeSet<String> {
    set(resp.header("Access-Control-Expose-Headers").unwrap_or(""))
}

const BASE: &str = "Alert, Backoff, Retry-After, Content-Type, Content-Length";
const OBJECT_GET: &str = "ETag, Last-Modified, Cache-Control, Expires, Pragma";

#[test]
fn json_responses_carry_security_headers() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let created = s().post(&records, &owner, json!({})).expect(201);
    let id = created.data()["id"].as_str().unwrap().to_string();
    for resp in [
        created,
        s().get(&format!("{records}/{id}"), &owner).expect(200),
        s().get(&records, &owner).expect(200),
        s().get(&format!("{records}/missing"), &owner).expect(404),
        s().req("GET", &records).send().expect(401),
        s().req("GET", "/").send().expect(200),
    ] {
        assert_eq!(
            resp.header("X-Content-Type-Options"),
            Some("nosniff"),
            "{resp}"
        );
        assert_eq!(
            resp.header("Content-Security-Policy").map(str::trim),
            Some(CSP),
            "{resp}"
        );
    }
}

#[test]
fn authenticated_reads_are_not_cached() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    s().put(&format!("{records}/r"), &owner, json!({}))
        .expect(201);
    for url in [format!("{records}/r"), records.clone()] {
        let resp = s().get(&url, &owner).expect(200);
        assert_eq!(
            resp.header("Cache-Control"),
            Some("no-cache, no-store"),
            "{resp}"
        );
    }
    // No Backoff unless configured.
    assert!(s().get(&records, &owner).header("Backoff").is_none());
}

#[test]
fn exposed_headers() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = s()
        .req("PUT", &format!("{records}/r"))
        .user(&owner)
        .header("Origin", "http://example.com")
        .json(&json!({}))
        .send();
    assert!(exposed(&resp).is_superset(&set(BASE)), "write\n{resp}");
    let object: BTreeSet<String> = set(BASE).union(&set(OBJECT_GET)).cloned().collect();
    let resp = s().get(&format!("{records}/r"), &owner);
    assert_eq!(exposed(&resp), object, "object GET\n{resp}");
    let mut plural = object.clone();
    plural.insert("next-page".into());
    let resp = s().get(&records, &owner);
    assert_eq!(exposed(&resp), plural, "plural GET\n{resp}");
    let mut head = plural.clone();
    head.extend(["total-objects".to_string(), "total-records".to_string()]);
    let resp = s().head(&records, &owner);
    assert_eq!(exposed(&resp), head, "plural HEAD\n{resp}");
}

#[test]
fn cors_allows_any_origin() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    for resp in [
        s().req("GET", &records)
            .user(&owner)
            .header("Origin", "http://example.com")
            .send(),
        s().req("POST", &records)
            .user(&owner)
            .header("Origin", "https://app.test")
            .json(&json!({}))
            .send(),
        s().req("GET", &records)
            .header("Origin", "http://example.com")
            .send(),
    ] {
        assert_eq!(
            resp.header("Access-Control-Allow-Origin"),
            Some("*"),
            "{resp}"
        );
        assert!(
            resp.header("Access-Control-Allow-Credentials").is_none(),
            "{resp}"
        );
    }
}

#[test]
fn cors_preflight() {
    let owner = User::fresh("owner");
    let (bid, records) = new_collection(s(), &owner);
    let cases = [
        (
            format!("{records}/r"),
            "PUT",
            "GET,HEAD,PUT,PATCH,DELETE,OPTIONS",
        ),
        (records.clone(), "POST", "HEAD,GET,POST,DELETE,OPTIONS"),
        (
            format!("/buckets/{bid}"),
            "DELETE",
            "GET,HEAD,PUT,PATCH,DELETE,OPTIONS",
        ),
        (
            "/buckets/default/collections/x".to_string(),
            "GET",
            "GET,HEAD,PUT,PATCH,DELETE,OPTIONS",
        ),
    ];
    for (url, method, allowed) in cases {
        let resp = s()
            .req("OPTIONS", &url)
            .header("Origin", "http://example.com")
            .header("Access-Control-Request-Method", method)
            .header("Access-Control-Request-Headers", "X-Foo, Authorization")
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
        assert_eq!(
            resp.header("Access-Control-Max-Age"),
            Some("3600"),
            "{resp}"
        );
        let allow_headers = set(resp.header("Access-Control-Allow-Headers").unwrap_or(""));
        assert!(
            allow_headers.contains("x-foo") && allow_headers.contains("authorization"),
            "{resp}"
        );
    }
}

#[test]
fn bad_preflights_are_400() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = s().req("OPTIONS", &format!("{records}/r")).send();
    let body = assert_400(&resp);
    let names: BTreeSet<&str> = body["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    assert!(names.contains("Access-Control-Request-Method"), "{resp}");
    for d in body["details"].as_array().unwrap() {
        assert_eq!(d["description"], "this header is mandatory", "{resp}");
        assert_eq!(d["location"], "header", "{resp}");
    }
    let resp = s()
        .req("OPTIONS", &format!("{records}/r"))
        .header("Origin", "http://e.com")
        .header("Access-Control-Request-Method", "POST")
        .send();
    assert_eq!(
        (resp.status, resp.json()),
        (
            400,
            json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                   "message": "Access-Control-Request-Method in header: Method not allowed",
                   "details": [{"location": "header", "name": "Access-Control-Request-Method",
                                "description": "Method not allowed"}]})
        ),
        "{resp}"
    );
}
