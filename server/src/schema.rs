//! JSON Schema validation (spec section 16): a collection's `schema`
//! validates its records; a bucket's `record:schema`, `collection:schema`
//! and `group:schema` validate what is created in it. Schemas themselves are
//! checked against the Draft 7 meta-schema when they are written.
//!
//! Compiled validators are cached by (object URI, its `last_modified`): a
//! schema changes only when its object changes, so a stale entry is never
//! used, and the cache is bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use jsonschema::{Draft, Validator};
use serde_json::{Map, Value};

use crate::errors::{ApiError, Location};

/// Validators kept at most; the oldest half is dropped past it.
const CACHE_MAX: usize = 1024;

/// Compiled validators, shared by the sequencer's write closures.
#[derive(Debug, Default)]
pub struct SchemaCache {
    map: Mutex<HashMap<(String, u64), Arc<Validator>>>,
}

/// Bucket attributes holding schemas for their children.
pub const BUCKET_SCHEMA_ATTRS: &[&str] = &["record:schema", "collection:schema", "group:schema"];

fn draft_of(schema: &Value) -> Draft {
    match schema.get("$schema").and_then(Value::as_str) {
        Some(s) if s.contains("draft-04") => Draft::Draft4,
        Some(s) if s.contains("draft-06") => Draft::Draft6,
        Some(s) if s.contains("draft-07") => Draft::Draft7,
        Some(s) if s.contains("2019-09") => Draft::Draft201909,
        _ => Draft::Draft202012,
    }
}

/// Checks a schema attribute when its object is written: it must be an
/// object and valid under the Draft 7 meta-schema.
pub fn check_schema_attr(name: &str, value: &Value) -> Result<(), ApiError> {
    let field = format!("data.{name}");
    if !value.is_object() {
        return Err(ApiError::invalid(
            Location::Body,
            Some(&field),
            format!("{value} is not of type 'object'"),
        ));
    }
    if let Err(e) = jsonschema::draft7::meta::validate(value) {
        return Err(ApiError::invalid(
            Location::Body,
            Some(&field),
            e.to_string(),
        ));
    }
    Ok(())
}

impl SchemaCache {
    fn validator(&self, key: (String, u64), schema: &Value) -> Result<Arc<Validator>, ApiError> {
        if let Ok(map) = self.map.lock() {
            if let Some(v) = map.get(&key) {
                return Ok(v.clone());
            }
        }
        let compiled = jsonschema::options()
            .with_draft(draft_of(schema))
            .should_validate_formats(false)
            .build(schema)
            .map_err(|e| ApiError::invalid(Location::Body, Some("schema"), e.to_string()))?;
        let compiled = Arc::new(compiled);
        if let Ok(mut map) = self.map.lock() {
            if map.len() >= CACHE_MAX {
                let drop: Vec<_> = map.keys().take(CACHE_MAX / 2).cloned().collect();
                for k in drop {
                    map.remove(&k);
                }
            }
            map.insert(key, compiled.clone());
        }
        Ok(compiled)
    }

    /// Validates `data` against the schema held by object `owner_uri` at
    /// `owner_ts`. `id`, `last_modified` and `schema` are left out, and out
    /// of `required`, unless the schema names `id` in its properties.
    pub fn validate(
        &self,
        owner_uri: &str,
        owner_ts: u64,
        schema: &Value,
        data: &Map<String, Value>,
    ) -> Result<(), ApiError> {
        let keeps_id = schema
            .get("properties")
            .and_then(Value::as_object)
            .is_some_and(|p| p.contains_key("id"));
        let mut schema = schema.clone();
        let mut instance = data.clone();
        if !keeps_id {
            for k in ["id", "last_modified", "schema"] {
                instance.remove(k);
            }
            if let Some(Value::Array(req)) = schema.get_mut("required") {
                req.retain(|r| !matches!(r.as_str(), Some("id" | "last_modified" | "schema")));
            }
        }
        let validator = self.validator((owner_uri.to_owned(), owner_ts), &schema)?;
        let instance = Value::Object(instance);
        if let Some(e) = validator.iter_errors(&instance).next() {
            let name = error_field(&e);
            return Err(ApiError::invalid(
                Location::Body,
                Some(&name),
                e.to_string(),
            ));
        }
        Ok(())
    }
}

/// Validates what is about to be written for `target`, given its loaded
/// ancestors: schema attributes of buckets and collections are checked;
/// collections, groups and records are validated against the schemas their
/// bucket and collection define. A record validated by its collection's
/// schema gets `schema` = the collection's `last_modified` (the schema
/// version), as Kinto does.
pub fn validate_write(
    cache: &SchemaCache,
    loaded: &crate::access::Loaded,
    target: &crate::access::Target,
    data: &mut Map<String, Value>,
) -> Result<(), ApiError> {
    use projections::Resource;
    let bucket_schema = |attr: &str| {
        loaded.bucket.as_ref().and_then(|b| {
            b.data
                .get(attr)
                .filter(|s| s.is_object())
                .map(|s| (b, s.clone()))
        })
    };
    match target.resource {
        Resource::Bucket => {
            for attr in BUCKET_SCHEMA_ATTRS {
                if let Some(v) = data.get(*attr) {
                    check_schema_attr(attr, v)?;
                }
            }
        }
        Resource::Collection => {
            if let Some(v) = data.get("schema") {
                check_schema_attr("schema", v)?;
            }
            if let Some(v) = data.get("cache_expires") {
                if !v.is_i64() {
                    return Err(ApiError::invalid(
                        Location::Body,
                        Some("data.cache_expires"),
                        format!("{v} is not an integer"),
                    ));
                }
            }
            if let Some((b, s)) = bucket_schema("collection:schema") {
                let uri = format!(
                    "/buckets/{}#collection:schema",
                    target.bucket.as_deref().unwrap_or("")
                );
                cache.validate(&uri, b.last_modified, &s, data)?;
            }
        }
        Resource::Group => {
            if let Some((b, s)) = bucket_schema("group:schema") {
                let uri = format!(
                    "/buckets/{}#group:schema",
                    target.bucket.as_deref().unwrap_or("")
                );
                cache.validate(&uri, b.last_modified, &s, data)?;
            }
        }
        Resource::Record => {
            data.remove("schema");
            // The id is in the URL, not in `data`: validate the record with
            // it, as Kinto does, so that a schema naming `id` in its
            // properties checks it (and finds it when it is `required`).
            let with_id = |data: &Map<String, Value>| {
                let mut instance = data.clone();
                if let Some(id) = &target.id {
                    instance.insert("id".into(), Value::String(id.clone()));
                }
                instance
            };
            if let Some(c) = &loaded.collection {
                if let Some(s) = c.data.get("schema").filter(|s| s.is_object()) {
                    let uri = format!(
                        "/buckets/{}/collections/{}",
                        target.bucket.as_deref().unwrap_or(""),
                        target.collection.as_deref().unwrap_or("")
                    );
                    cache.validate(&uri, c.last_modified, s, &with_id(data))?;
                    data.insert("schema".into(), Value::from(c.last_modified));
                }
            }
            if let Some((b, s)) = bucket_schema("record:schema") {
                let uri = format!(
                    "/buckets/{}#record:schema",
                    target.bucket.as_deref().unwrap_or("")
                );
                cache.validate(&uri, b.last_modified, &s, &with_id(data))?;
            }
        }
        Resource::Account => {}
    }
    Ok(())
}

/// The failing keyword: the last segment of the schema path.
fn keyword(schema_path: &str) -> String {
    schema_path.rsplit('/').next().unwrap_or("").to_owned()
}

/// `details[0].name` of a validation error, by Kinto's rule: the innermost
/// key (or index) of the failing value's path (`"x"` for `{"o": {"x": …}}`);
/// at the top level, for `required`, the missing property (Kinto takes the
/// last name of the `required` list, which is the missing one only when it
/// lists one); else the failing keyword (`additionalProperties`).
fn error_field(e: &jsonschema::ValidationError<'_>) -> String {
    let path = e.instance_path.to_string();
    if let Some(last) = path.rsplit('/').next().filter(|s| !s.is_empty()) {
        return last.replace("~1", "/").replace("~0", "~");
    }
    if let jsonschema::error::ValidationErrorKind::Required { property } = &e.kind {
        if let Some(p) = property.as_str() {
            return p.to_owned();
        }
    }
    keyword(&e.schema_path.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn data(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn validates_records_and_names_the_field() {
        let cache = SchemaCache::default();
        let schema = json!({"type": "object", "properties": {"title": {"type": "string", "maxLength": 5}}, "required": ["title", "id"], "additionalProperties": false});
        cache
            .validate(
                "/c",
                1,
                &schema,
                &data(json!({"title": "ok", "id": "x", "last_modified": 3})),
            )
            .unwrap();
        let e = cache
            .validate("/c", 1, &schema, &data(json!({"title": "toolong"})))
            .unwrap_err();
        assert_eq!(e.body()["details"][0]["name"], "title");
        let e = cache
            .validate("/c", 1, &schema, &data(json!({"title": "a", "x": 1})))
            .unwrap_err();
        assert_eq!(e.body()["details"][0]["name"], "additionalProperties");
        // The missing property of `required`, the innermost key of a nested
        // failure.
        let e = cache
            .validate("/c", 1, &schema, &data(json!({"id": "x"})))
            .unwrap_err();
        assert_eq!(e.body()["details"][0]["name"], "title");
        assert_eq!(e.body()["message"], "\"title\" is a required property");
        let nested = json!({"properties": {"o": {"properties": {"x~/y": {"type": "integer"}}}}});
        let e = cache
            .validate("/n", 1, &nested, &data(json!({"o": {"x~/y": "no"}})))
            .unwrap_err();
        assert_eq!(e.body()["details"][0]["name"], "x~/y");
        // A schema naming `id` validates it.
        let ids = json!({"properties": {"id": {"pattern": "^x"}}, "required": ["id"]});
        cache
            .validate("/i", 1, &ids, &data(json!({"id": "xa"})))
            .unwrap();
        let e = cache
            .validate("/i", 1, &ids, &data(json!({"id": "ya"})))
            .unwrap_err();
        assert_eq!(e.body()["details"][0]["name"], "id");
        // `format` is not enforced.
        let s2 = json!({"properties": {"m": {"type": "string", "format": "email"}}});
        cache
            .validate("/d", 1, &s2, &data(json!({"m": "nope"})))
            .unwrap();
    }

    #[test]
    fn checks_schemas_against_the_meta_schema() {
        check_schema_attr("schema", &json!({"type": "object"})).unwrap();
        let e = check_schema_attr("schema", &json!({"type": "nope"})).unwrap_err();
        assert_eq!(e.body()["details"][0]["name"], "data.schema");
        assert!(check_schema_attr("schema", &json!([1])).is_err());
    }
}
