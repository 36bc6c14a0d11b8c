//! `GET /__api__`: an OpenAPI 2.0 (Swagger) description, generated from the
//! route table in `routes.rs` so it always says what the server serves.

use serde_json::{json, Map, Value};

use crate::routes::{RouteKind, ROUTES};

fn parameters(template: &str) -> Vec<Value> {
    template
        .split('/')
        .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        .map(|name| json!({"name": name, "in": "path", "required": true, "type": "string"}))
        .collect()
}

fn operation(kind: RouteKind, method: &str, summary: &str, template: &str) -> Value {
    let tag = match kind {
        RouteKind::Resource(r, _) => r.plural().to_owned(),
        RouteKind::Batch => "batch".to_owned(),
        _ => "utilities".to_owned(),
    };
    let mut op = json!({
        "summary": format!("{method} {summary}"),
        "operationId": format!("{}_{}", method.to_lowercase(), template.trim_matches('/').replace(['/', '{', '}', '.'], "_")),
        "tags": [tag],
        "produces": ["application/json"],
        "parameters": parameters(template),
        "responses": {"200": {"description": "Success"}, "default": {"description": "Kinto error", "schema": {"$ref": "#/definitions/Error"}}},
    });
    if matches!(method, "PUT" | "PATCH" | "POST") {
        if let Some(params) = op["parameters"].as_array_mut() {
            params.push(json!({"name": "body", "in": "body", "required": method != "PUT", "schema": {"$ref": if kind == RouteKind::Batch { "#/definitions/Batch" } else { "#/definitions/Envelope" }}}));
        }
        op["consumes"] = json!(["application/json"]);
    }
    if matches!(kind, RouteKind::Resource(_, true)) && method != "HEAD" {
        op["responses"]["404"] = json!({"description": "Object not found"});
        op["responses"]["412"] = json!({"description": "Precondition failed"});
    }
    op
}

/// The Swagger document, with `host` as the client reached us.
pub fn document(host: &str, version: &str) -> Value {
    let mut paths = Map::new();
    for row in ROUTES {
        let mut item = Map::new();
        for method in row.methods.split(", ").filter(|m| *m != "OPTIONS") {
            item.insert(
                method.to_lowercase(),
                operation(row.kind, method, row.summary, row.template),
            );
        }
        paths.insert(row.template.to_owned(), Value::Object(item));
    }
    json!({
        "swagger": "2.0",
        "info": {"title": "kinto", "version": version, "description": "Cairn: the Kinto HTTP API v1 on an append-only log"},
        "host": host,
        "basePath": "/v1",
        "schemes": ["http"],
        "securityDefinitions": {"basicAuth": {"type": "basic"}},
        "security": [{"basicAuth": []}],
        "tags": [{"name": "buckets"}, {"name": "collections"}, {"name": "groups"}, {"name": "records"}, {"name": "batch"}, {"name": "utilities"}],
        "paths": paths,
        "definitions": {
            "Envelope": {"type": "object", "properties": {"data": {"type": "object"}, "permissions": {"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}}},
            "Batch": {"type": "object", "properties": {"defaults": {"type": "object"}, "requests": {"type": "array", "items": {"type": "object"}}}, "required": ["requests"]},
            "Error": {"type": "object", "properties": {"code": {"type": "integer"}, "errno": {"type": "integer"}, "error": {"type": "string"}, "message": {"type": "string"}, "details": {}}, "required": ["code", "errno", "error"]},
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_described() {
        let doc = document("localhost", "1.23");
        for row in ROUTES {
            assert!(doc["paths"][row.template].is_object(), "{}", row.template);
        }
        assert!(
            doc["paths"]["/buckets/{bid}/collections/{cid}/records/{rid}"]["patch"].is_object()
        );
        assert!(doc["paths"]["/buckets"]["put"].is_null());
        assert_eq!(doc["basePath"], "/v1");
    }
}
