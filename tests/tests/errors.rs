//! api-core section 19: error bodies are API. One pinned example per errno
//! the core API can produce, byte-for-byte as JSON values (the pattern of
//! meilisearch's `tests/documents/errors.rs`).

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

struct Pin {
    name: &'static str,
    resp: Response,
    status: u16,
    body: Value,
}

#[test]
fn error_bodies_are_pinned() {
    let owner = User::fresh("owner");
    let stranger = User::fresh("stranger");
    let (bid, records) = new_collection(s(), &owner);
    let r = format!("{records}/r");
    let t = lm(&s()
        .put(&r, &owner, json!({"data": {"v": 1}}))
        .expect(201)
        .data());
    let group = format!("/buckets/{bid}/groups/g");

    let invalid = |name: Value, location: &str, description: &str, message: &str| {
        json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
               "details": [{"location": location, "name": name, "description": description}]})
    };
    let pins = vec![
        Pin {
            name: "section 19's example",
            resp: s().put(&group, &owner, json!({"data": {"members": "x"}})),
            status: 400,
            body: invalid(
                json!("data.members"),
                "body",
                "\"x\" is not iterable",
                "data.members in body: \"x\" is not iterable",
            ),
        },
        Pin {
            name: "104 anonymous",
            resp: s().req("GET", &r).send(),
            status: 401,
            body: json!({"code": 401, "errno": 104, "error": "Unauthorized",
                         "message": "Please authenticate yourself to use this endpoint."}),
        },
        Pin {
            name: "107 invalid id",
            resp: s().put(&format!("{records}/a.b"), &owner, json!({})),
            status: 400,
            body: invalid(
                Value::Null,
                "path",
                "Invalid object id",
                "path: Invalid object id",
            ),
        },
        Pin {
            name: "107 querystring",
            resp: s().get(&format!("{records}?_since=-1"), &owner),
            status: 400,
            body: invalid(
                json!("_since"),
                "querystring",
                "-1 is less than minimum value 0",
                "_since in querystring: -1 is less than minimum value 0",
            ),
        },
        Pin {
            name: "107 header",
            resp: s()
                .req("GET", &r)
                .user(&owner)
                .header("If-Match", "123")
                .send(),
            status: 400,
            body: invalid(
                json!("If-Match"),
                "header",
                "The value should be integer between double quotes.",
                "If-Match in header: The value should be integer between double quotes.",
            ),
        },
        Pin {
            name: "107 content type (415)",
            resp: s()
                .req("PUT", &r)
                .user(&owner)
                .header("Content-Type", "text/plain")
                .body("{}")
                .send(),
            status: 415,
            body: json!({"code": 415, "errno": 107, "error": "Invalid parameters",
                         "message": "Content-Type header should be one of ['application/json']",
                         "details": [{"location": "header", "name": "Content-Type",
                                      "description": "Content-Type header should be one of ['application/json']"}]}),
        },
        Pin {
            name: "110 missing object",
            resp: s().get(&format!("{records}/nope"), &owner),
            status: 404,
            body: json!({"code": 404, "errno": 110, "error": "Not Found",
                         "details": {"id": "nope", "resource_name": "record"}}),
        },
        Pin {
            name: "111 missing parent",
            resp: s().get(&format!("/buckets/{bid}/collections/nope/records"), &owner),
            status: 404,
            body: json!({"code": 404, "errno": 111, "error": "Not Found",
                         "details": {"id": "nope", "resource_name": "collection"}}),
        },
        Pin {
            name: "111 unknown URL",
            resp: s().get("/no/such/thing", &owner),
            status: 404,
            body: json!({"code": 404, "errno": 111, "error": "Not Found",
                         "message": "The resource you are looking for could not be found."}),
        },
        Pin {
            name: "114 precondition",
            resp: s()
                .req("PATCH", &r)
                .user(&owner)
                .header("If-Match", "\"1\"")
                .json(&json!({"data": {}}))
                .send(),
            status: 412,
            body: json!({"code": 412, "errno": 114, "error": "Precondition Failed",
                         "message": "Resource was modified meanwhile",
                         "details": {"existing": {"id": "r", "last_modified": t, "v": 1}}}),
        },
        Pin {
            name: "115 method",
            resp: s().req("POST", &r).user(&owner).json(&json!({})).send(),
            status: 405,
            body: json!({"code": 405, "errno": 115, "error": "Method Not Allowed",
                         "message": "Method not allowed on this endpoint."}),
        },
        Pin {
            name: "116 version",
            resp: s()
                .req("GET", "")
                .raw_path("/v0/buckets")
                .user(&owner)
                .send(),
            status: 404,
            body: json!({"code": 404, "errno": 116, "error": "Not Found",
                         "message": "The requested API version is not available on this server."}),
        },
        Pin {
            name: "121 forbidden",
            resp: s().get(&r, &stranger),
            status: 403,
            body: json!({"code": 403, "errno": 121, "error": "Forbidden",
                         "message": "This user cannot access this resource."}),
        },
    ];
    let mut failures = Vec::new();
    for pin in pins {
        let body: Value = serde_json::from_slice(&pin.resp.body).unwrap_or(Value::Null);
        let ct = pin.resp.header("Content-Type");
        if pin.resp.status != pin.status || body != pin.body || ct != Some("application/json") {
            failures.push(format!(
                "[{}] expected {} {}\n{}",
                pin.name, pin.status, pin.body, pin.resp
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// With several validation errors, `details` lists them all and `message`
/// describes the first by name.
#[test]
fn several_validation_errors() {
    let owner = User::fresh("owner");
    let (_, records) = new_collection(s(), &owner);
    let resp = s().put(
        &format!("{records}/r"),
        &owner,
        json!({"data": [1], "permissions": {"read": "x"}}),
    );
    let body = assert_400(&resp);
    let details = body["details"].as_array().unwrap();
    assert_eq!(details.len(), 2, "{resp}");
    let mut names: Vec<&str> = details
        .iter()
        .map(|d| d["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, vec!["data", "permissions.read"]);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("data in body: "),
        "{resp}"
    );
}
