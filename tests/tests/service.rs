//! api-core sections 18 and 20 (issue 4): the service endpoints (`GET /v1/`,
//! heartbeats, `__version__`, `__api__`, `contribute.json`), redirects of
//! unversioned paths, CORS, and what an operator configures: `Backoff`, end
//! of service, read-only mode, the request body limit, CORS origins.

use std::collections::BTreeSet;

use cairn_tests::*;

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
