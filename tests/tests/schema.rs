//! api-core section 16 (issue 4): JSON Schema validation. A collection's
//! `schema` validates its records on create and update, bad schemas are
//! refused when the collection is written, errors come in Kinto's format
//! (validator messages are the Rust `jsonschema` crate's, see
//! docs/kinto-differences.md), validated records get a `schema` field, and
//! a bucket's `record:schema` / `collection:schema` / `group:schema` apply to
//! what is created in it.

use cairn_tests::*;
use serde_json::{json, Value};

fn s() -> &'static Server {
    Server::shared()
}

fn invalid(name: &str, description: &str, message: &str) -> Value {
    json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
           "details": [{"location": "body", "name": name, "description": description}]})
}

#[track_caller]
fn assert_body(resp: &Response, status: u16, body: Value) {
    assert_eq!((resp.status, resp.json()), (status, body), "{resp}");
}

/// A bucket with collection `c` whose schema is `schema`: (bucket id,
/// collection URL, the collection's last_modified).
fn with_schema(owner: &User, schema: Value) -> (String, String, u64) {
    let bid = new_bucket(s(), owner);
    let url = format!("/buckets/{bid}/collections/c");
    let resp = s()
        .put(&url, owner, json!({"data": {"schema": schema}}))
        .expect(201);
    (bid, url, lm(&resp.data()))
}

fn todo_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "title": {"type": "string", "maxLength": 5},
            "n": {"type": "integer"},
            "o": {"type": "object", "properties": {"x": {"type": "integer"}}},
            "tags": {"type": "array", "items": {"type": "string"}}
        },
        "required": ["title"],
        "additionalProperties": false
    })
}

#[test]
fn records_are_validated_on_every_write() {
    let owner = User::fresh("owner");
    let (_, coll, version) = with_schema(&owner, todo_schema());
    let records = format!("{coll}/records");
    // Valid: created, with the schema version.
    let ok = s()
        .put(
            &format!("{records}/ok"),
            &owner,
            json!({"data": {"title": "ok", "n": 1}}),
        )
        .expect(201);
    assert_eq!(
        ok.data(),
        json!({"id": "ok", "last_modified": lm(&ok.data()), "title": "ok", "n": 1, "schema": version})
    );
    assert_eq!(s().get(&format!("{records}/ok"), &owner).data(), ok.data());
    let posted = s()
        .post(&records, &owner, json!({"data": {"title": "p"}}))
        .expect(201);
    assert_eq!(posted.data()["schema"], json!(version));
    // Invalid: 400 with the failing field as name, nothing written.
    let cases = [
        (
            json!({"title": "toolong"}),
            invalid(
                "title",
                "\"toolong\" is longer than 5 characters",
                "title in body: \"toolong\" is longer than 5 characters",
            ),
        ),
        (
            json!({"n": 1}),
            invalid(
                "title",
                "\"title\" is a required property",
                "\"title\" is a required property",
            ),
        ),
        (
            json!({"title": "a", "n": "x"}),
            // No "n in body: " prefix: the description holds an "n" (Kinto's
            // substring rule).
            invalid(
                "n",
                "\"x\" is not of type \"integer\"",
                "\"x\" is not of type \"integer\"",
            ),
        ),
        (
            json!({"title": "a", "zzz": 1}),
            invalid(
                "additionalProperties",
                "Additional properties are not allowed ('zzz' was unexpected)",
                "additionalProperties in body: Additional properties are not allowed ('zzz' was unexpected)",
            ),
        ),
        // Nested: the innermost key (or index), as Kinto names it.
        (
            json!({"title": "a", "o": {"x": "no"}}),
            invalid(
                "x",
                "\"no\" is not of type \"integer\"",
                "x in body: \"no\" is not of type \"integer\"",
            ),
        ),
        (
            json!({"title": "a", "tags": ["ok", 3]}),
            invalid(
                "1",
                "3 is not of type \"string\"",
                "1 in body: 3 is not of type \"string\"",
            ),
        ),
    ];
    for (data, want) in cases {
        let bad = s().put(
            &format!("{records}/bad"),
            &owner,
            json!({"data": data.clone()}),
        );
        assert_body(&bad, 400, want.clone());
        let bad = s().post(&records, &owner, json!({"data": data}));
        assert_body(&bad, 400, want);
    }
    assert_404(&s().get(&format!("{records}/bad"), &owner), "bad", "record");
    // PATCH: the result is validated, every flavour.
    let before = s().get(&format!("{records}/ok"), &owner).json();
    let resp = s().patch(
        &format!("{records}/ok"),
        &owner,
        json!({"data": {"title": "toolong"}}),
    );
    assert_eq!(resp.status, 400, "{resp}");
    let resp = s()
        .req("PATCH", &format!("{records}/ok"))
        .user(&owner)
        .header("Content-Type", "application/merge-patch+json")
        .body(json!({"data": {"title": null}}).to_string())
        .send();
    assert_body(
        &resp,
        400,
        invalid(
            "title",
            "\"title\" is a required property",
            "\"title\" is a required property",
        ),
    );
    let resp = s()
        .req("PATCH", &format!("{records}/ok"))
        .user(&owner)
        .header("Content-Type", "application/json-patch+json")
        .body(json!([{"op": "add", "path": "/data/extra", "value": 1}]).to_string())
        .send();
    assert_eq!(resp.status, 400, "{resp}");
    assert_eq!(s().get(&format!("{records}/ok"), &owner).json(), before);
    // A client-sent schema value is replaced by the version; id and
    // last_modified are not checked against additionalProperties.
    let resp = s()
        .put(
            &format!("{records}/own"),
            &owner,
            json!({"data": {"title": "x", "schema": 123, "last_modified": 5}}),
        )
        .expect(201);
    assert_eq!(resp.data()["schema"], json!(version));
}

#[test]
fn schema_changes_apply_to_later_writes_only() {
    let owner = User::fresh("owner");
    let (_, coll, v1) = with_schema(&owner, json!({"type": "object"}));
    let records = format!("{coll}/records");
    s().put(
        &format!("{records}/old"),
        &owner,
        json!({"data": {"n": "text"}}),
    )
    .expect(201);
    let v2 = lm(&s()
        .patch(
            &coll,
            &owner,
            json!({"data": {"schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}}),
        )
        .expect(200)
        .data());
    assert!(v2 > v1);
    // Not re-validated: still there, with its old version.
    let old = s()
        .get(&format!("{records}/old"), &owner)
        .expect(200)
        .data();
    assert_eq!(
        (old["n"].clone(), old["schema"].clone()),
        (json!("text"), json!(v1))
    );
    // New writes use the new schema (no stale cached validator).
    let resp = s().put(
        &format!("{records}/new"),
        &owner,
        json!({"data": {"n": "text"}}),
    );
    assert_eq!(resp.status, 400, "{resp}");
    let resp = s()
        .put(&format!("{records}/new"), &owner, json!({"data": {"n": 2}}))
        .expect(201);
    assert_eq!(resp.data()["schema"], json!(v2));
    // Removing the schema: no validation, no schema field.
    let resp = s().put(&coll, &owner, json!({"data": {}})).expect(200);
    assert!(resp.data().get("schema").is_none());
    let resp = s()
        .put(
            &format!("{records}/free"),
            &owner,
            json!({"data": {"n": "text"}}),
        )
        .expect(201);
    assert!(resp.data().get("schema").is_none(), "{resp}");
}

#[test]
fn bad_schemas_are_refused() {
    let owner = User::fresh("owner");
    let bid = new_bucket(s(), &owner);
    let coll = format!("/buckets/{bid}/collections/c");
    let cases = [
        (
            json!({"type": "nope"}),
            invalid(
                "data.schema",
                "\"nope\" is not valid under any of the schemas listed in the 'anyOf' keyword",
                "data.schema in body: \"nope\" is not valid under any of the schemas listed in the 'anyOf' keyword",
            ),
        ),
        (
            json!("x"),
            invalid(
                "data.schema",
                "\"x\" is not of type 'object'",
                "data.schema in body: \"x\" is not of type 'object'",
            ),
        ),
        (
            json!([1]),
            invalid(
                "data.schema",
                "[1] is not of type 'object'",
                "data.schema in body: [1] is not of type 'object'",
            ),
        ),
        // Checked against Draft 7: a Draft 4 boolean exclusiveMaximum is not.
        (
            json!({"$schema": "http://json-schema.org/draft-04/schema#",
                   "properties": {"n": {"maximum": 5, "exclusiveMaximum": true}}}),
            invalid(
                "data.schema",
                "true is not of type \"number\"",
                "data.schema in body: true is not of type \"number\"",
            ),
        ),
    ];
    for (schema, want) in cases {
        for method in ["PUT", "PATCH"] {
            if method == "PATCH" {
                s().put(&coll, &owner, json!({"data": {}})).expect_any();
            }
            let resp = s()
                .req(method, &coll)
                .user(&owner)
                .json(&json!({"data": {"schema": schema.clone()}}))
                .send();
            assert_body(&resp, 400, want.clone());
        }
        let resp = s().post(
            &format!("/buckets/{bid}/collections"),
            &owner,
            json!({"data": {"id": "posted", "schema": schema}}),
        );
        assert_body(&resp, 400, want);
    }
    // cache_expires must be an integer.
    let resp = s().put(&coll, &owner, json!({"data": {"cache_expires": "x"}}));
    assert_body(
        &resp,
        400,
        invalid(
            "data.cache_expires",
            "\"x\" is not an integer",
            "data.cache_expires in body: \"x\" is not an integer",
        ),
    );
}

trait ExpectAny {
    fn expect_any(self) -> Response;
}

impl ExpectAny for Response {
    /// 200 or 201.
    #[track_caller]
    fn expect_any(self) -> Response {
        assert!(matches!(self.status, 200 | 201), "{self}");
        self
    }
}

#[test]
fn drafts_refs_and_keywords_without_a_path() {
    let owner = User::fresh("owner");
    // The draft named by $schema (Draft 7's numeric exclusiveMaximum).
    let (_, c7, _) = with_schema(
        &owner,
        json!({"$schema": "http://json-schema.org/draft-07/schema#",
               "properties": {"n": {"exclusiveMaximum": 5}}}),
    );
    s().put(
        &format!("{c7}/records/ok"),
        &owner,
        json!({"data": {"n": 4}}),
    )
    .expect(201);
    let resp = s().put(
        &format!("{c7}/records/no"),
        &owner,
        json!({"data": {"n": 5}}),
    );
    assert_eq!(resp.status, 400, "{resp}");
    // No $schema: the latest draft (prefixItems is 2020-12).
    let (_, cl, _) = with_schema(
        &owner,
        json!({"properties": {"l": {"prefixItems": [{"type": "string"}]}}}),
    );
    let resp = s().put(
        &format!("{cl}/records/r"),
        &owner,
        json!({"data": {"l": [1]}}),
    );
    assert_body(
        &resp,
        400,
        invalid(
            "0",
            "1 is not of type \"string\"",
            "0 in body: 1 is not of type \"string\"",
        ),
    );
    // format is not enforced.
    let (_, cf, _) = with_schema(&owner, json!({"properties": {"m": {"format": "email"}}}));
    s().post(
        &format!("{cf}/records"),
        &owner,
        json!({"data": {"m": "nope"}}),
    )
    .expect(201);
    // An unresolvable $ref: the collection is accepted, record writes fail.
    let (_, cr, _) = with_schema(
        &owner,
        json!({"properties": {"a": {"$ref": "#/definitions/nowhere"}}}),
    );
    let resp = s().put(
        &format!("{cr}/records/r"),
        &owner,
        json!({"data": {"a": 1}}),
    );
    assert_body(
        &resp,
        400,
        invalid(
            "schema",
            "Pointer '/definitions/nowhere' does not exist",
            "schema in body: Pointer '/definitions/nowhere' does not exist",
        ),
    );
    // A failure without a data path (the reference: 500): 400, named by
    // the missing property.
    let (_, cd, _) = with_schema(&owner, json!({"dependentRequired": {"a": ["b"]}}));
    let resp = s().put(
        &format!("{cd}/records/r"),
        &owner,
        json!({"data": {"a": 1}}),
    );
    assert_body(
        &resp,
        400,
        invalid(
            "b",
            "\"b\" is a required property",
            "\"b\" is a required property",
        ),
    );
    // Without a property to name: the keyword.
    let (_, cm, _) = with_schema(&owner, json!({"minProperties": 2}));
    let resp = s().put(
        &format!("{cm}/records/r"),
        &owner,
        json!({"data": {"a": 1}}),
    );
    assert_body(
        &resp,
        400,
        invalid(
            "minProperties",
            "{\"a\":1} has less than 2 properties",
            "minProperties in body: {\"a\":1} has less than 2 properties",
        ),
    );
    s().put(
        &format!("{cd}/records/r"),
        &owner,
        json!({"data": {"a": 1, "b": 2}}),
    )
    .expect(201);
}

/// `id`, `last_modified` and `schema` are left out of validation and of
/// `required`, unless the schema names `id` in its properties: then the
/// record is validated with its id (taken from the URL).
#[test]
fn id_is_validated_only_when_the_schema_names_it() {
    let owner = User::fresh("owner");
    let (_, c1, _) = with_schema(
        &owner,
        json!({"type": "object", "required": ["id", "last_modified", "schema", "t"],
               "additionalProperties": false, "properties": {"t": {}}}),
    );
    s().put(
        &format!("{c1}/records/any"),
        &owner,
        json!({"data": {"t": 1}}),
    )
    .expect(201);
    s().post(&format!("{c1}/records"), &owner, json!({"data": {"t": 1}}))
        .expect(201);
    let (_, c2, _) = with_schema(
        &owner,
        json!({"type": "object", "required": ["id"],
               "properties": {"id": {"type": "string", "pattern": "^x"}}}),
    );
    s().put(&format!("{c2}/records/xa"), &owner, json!({"data": {}}))
        .expect(201);
    let resp = s().put(&format!("{c2}/records/ya"), &owner, json!({"data": {}}));
    assert_body(
        &resp,
        400,
        invalid(
            "id",
            "\"ya\" does not match \"^x\"",
            "id in body: \"ya\" does not match \"^x\"",
        ),
    );
    // A server-assigned id is validated too.
    let resp = s().post(&format!("{c2}/records"), &owner, json!({"data": {}}));
    assert_eq!(resp.status, 400, "{resp}");
    assert_eq!(resp.json()["details"][0]["name"], "id", "{resp}");
}

#[test]
fn bucket_schemas_apply_to_what_is_created_in_it() {
    let owner = User::fresh("owner");
    let bid = fresh_id("b");
    let bucket = format!("/buckets/{bid}");
    // Bad bucket schemas.
    let resp = s().put(
        &bucket,
        &owner,
        json!({"data": {"record:schema": {"type": 3}}}),
    );
    assert_body(
        &resp,
        400,
        invalid(
            "data.record:schema",
            "3 is not valid under any of the schemas listed in the 'anyOf' keyword",
            "data.record:schema in body: 3 is not valid under any of the schemas listed in the 'anyOf' keyword",
        ),
    );
    let resp = s().put(&bucket, &owner, json!({"data": {"group:schema": []}}));
    assert_eq!(resp.status, 400, "{resp}");
    assert_eq!(resp.json()["details"][0]["name"], "data.group:schema");
    s().put(
        &bucket,
        &owner,
        json!({"data": {
            "record:schema": {"type": "object", "required": ["must"]},
            "collection:schema": {"type": "object", "required": ["title"]},
            "group:schema": {"type": "object", "properties": {"members": {"maxItems": 1}}}
        }}),
    )
    .expect(201);
    // Collections.
    let resp = s().put(
        &format!("{bucket}/collections/c"),
        &owner,
        json!({"data": {}}),
    );
    assert_body(
        &resp,
        400,
        invalid(
            "title",
            "\"title\" is a required property",
            "\"title\" is a required property",
        ),
    );
    s().put(
        &format!("{bucket}/collections/c"),
        &owner,
        json!({"data": {"title": "C", "schema": {"type": "object", "properties": {"n": {"type": "integer"}}}}}),
    )
    .expect(201);
    // Groups.
    let resp = s().put(
        &format!("{bucket}/groups/g"),
        &owner,
        json!({"data": {"members": ["a", "b"]}}),
    );
    assert_body(
        &resp,
        400,
        invalid(
            "members",
            "[\"a\",\"b\"] has more than 1 item",
            "members in body: [\"a\",\"b\"] has more than 1 item",
        ),
    );
    s().put(
        &format!("{bucket}/groups/g"),
        &owner,
        json!({"data": {"members": ["a"]}}),
    )
    .expect(201);
    // Records: the collection's schema first, then the bucket's.
    let records = format!("{bucket}/collections/c/records");
    let resp = s().put(&format!("{records}/r"), &owner, json!({"data": {"n": "x"}}));
    assert_eq!(resp.json()["details"][0]["name"], "n", "{resp}");
    let resp = s().put(&format!("{records}/r"), &owner, json!({"data": {"n": 1}}));
    assert_body(
        &resp,
        400,
        invalid(
            "must",
            "\"must\" is a required property",
            "\"must\" is a required property",
        ),
    );
    let resp = s()
        .put(
            &format!("{records}/r"),
            &owner,
            json!({"data": {"n": 1, "must": true}}),
        )
        .expect(201);
    assert!(resp.data()["schema"].is_u64(), "{resp}");
    // A collection without a schema of its own: only the bucket's, and no
    // schema version in the record.
    s().put(
        &format!("{bucket}/collections/plain"),
        &owner,
        json!({"data": {"title": "P"}}),
    )
    .expect(201);
    let plain = format!("{bucket}/collections/plain/records");
    assert_eq!(
        s().put(&format!("{plain}/r"), &owner, json!({"data": {}}))
            .status,
        400
    );
    let resp = s()
        .put(&format!("{plain}/r"), &owner, json!({"data": {"must": 1}}))
        .expect(201);
    assert!(resp.data().get("schema").is_none(), "{resp}");
}
