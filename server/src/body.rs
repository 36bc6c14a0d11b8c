//! Request bodies: content type, JSON, and Kinto's `{data, permissions}`
//! envelope with its validation rules (spec section 2).

use projections::{Permissions, Resource};
use serde_json::{Map, Value};

use crate::errors::{python_str, ApiError, InvalidDetail, Location};
use crate::permissions::parse_permissions;
use crate::request::Ctx;

/// Deepest JSON nesting accepted in a body: deeper input is refused before
/// it can exhaust the stack of anything that walks it.
pub const MAX_DEPTH: usize = 64;

/// PATCH body flavours (spec section 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// `application/json`: top-level merge of `data`.
    Plain,
    /// `application/merge-patch+json` (RFC 7396).
    Merge,
    /// `application/json-patch+json` (RFC 6902).
    JsonPatch,
}

/// A parsed `{data, permissions}` body.
#[derive(Debug, Clone, Default)]
pub struct Envelope {
    pub data: Option<Map<String, Value>>,
    pub permissions: Option<Permissions>,
    /// The raw `permissions` object, for PATCH merges that see `null`.
    pub raw_permissions: Option<Map<String, Value>>,
}

fn media_type(ctx: &Ctx) -> Option<&str> {
    ctx.header_str("content-type")
        .map(|ct| ct.split(';').next().unwrap_or("").trim())
}

/// Checks the `Content-Type` of a POST or PUT body.
pub fn check_json_content_type(ctx: &Ctx) -> Result<(), ApiError> {
    if ctx.body.is_empty() {
        return Ok(());
    }
    match media_type(ctx) {
        Some("application/json") => Ok(()),
        _ => Err(ApiError::unsupported_media_type(&["application/json"])),
    }
}

/// The PATCH flavour from `Content-Type` (absent means plain JSON).
pub fn patch_kind(ctx: &Ctx) -> Result<PatchKind, ApiError> {
    match media_type(ctx) {
        None | Some("application/json") => Ok(PatchKind::Plain),
        Some("application/merge-patch+json") => Ok(PatchKind::Merge),
        Some("application/json-patch+json") => Ok(PatchKind::JsonPatch),
        Some(_) => Err(ApiError::unsupported_media_type(&[
            "application/json",
            "application/merge-patch+json",
            "application/json-patch+json",
        ])),
    }
}

/// Parses the body as JSON (`{}` when empty), refusing NUL characters and
/// excessive nesting.
pub fn parse_json(ctx: &Ctx) -> Result<Value, ApiError> {
    if ctx.body.iter().all(|b| b.is_ascii_whitespace()) {
        return Ok(Value::Object(Map::new()));
    }
    let value: Value =
        serde_json::from_slice(&ctx.body).map_err(|e| ApiError::invalid_json(e.to_string()))?;
    check_value(&value, 0)?;
    Ok(value)
}

fn check_value(v: &Value, depth: usize) -> Result<(), ApiError> {
    if depth > MAX_DEPTH {
        return Err(ApiError::invalid(
            Location::Body,
            None,
            format!("JSON nesting deeper than {MAX_DEPTH} levels"),
        ));
    }
    let nul = || {
        ApiError::invalid(
            Location::Body,
            None,
            "NUL character (\\u0000) is not allowed",
        )
    };
    match v {
        Value::String(s) if s.contains('\0') => Err(nul()),
        Value::Array(a) => a.iter().try_for_each(|x| check_value(x, depth + 1)),
        Value::Object(m) => m.iter().try_for_each(|(k, x)| {
            if k.contains('\0') {
                return Err(nul());
            }
            check_value(x, depth + 1)
        }),
        _ => Ok(()),
    }
}

/// Python's repr of a small JSON value, as the reference writes unknown
/// keys in its message (`{'foo': 1}`).
fn py_repr(v: &Value) -> String {
    match v {
        Value::Null => "None".into(),
        Value::Bool(true) => "True".into(),
        Value::Bool(false) => "False".into(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => format!("'{s}'"),
        Value::Array(a) => format!("[{}]", a.iter().map(py_repr).collect::<Vec<_>>().join(", ")),
        Value::Object(m) => format!(
            "{{{}}}",
            m.iter()
                .map(|(k, v)| format!("'{k}': {}", py_repr(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// Parses `{data, permissions}` for an object of `resource`.
pub fn parse_envelope(value: Value, resource: Resource) -> Result<Envelope, ApiError> {
    let Value::Object(mut top) = value else {
        return Err(ApiError::invalid(
            Location::Body,
            None,
            format!("{} is not a mapping type", value),
        ));
    };
    let data = top.remove("data");
    let permissions = top.remove("permissions");
    if !top.is_empty() {
        let extra = py_repr(&Value::Object(top));
        return Err(ApiError::invalid(
            Location::Body,
            Some(""),
            format!("Unrecognized keys in mapping: \"{extra}\""),
        ));
    }
    // Problems with `data` and with `permissions` are reported together,
    // as Kinto does.
    let mut problems: Vec<InvalidDetail> = Vec::new();
    let data = match data {
        None => None,
        Some(Value::Object(m)) => {
            if m.contains_key("__permissions__") {
                problems.push(InvalidDetail::new(
                    Location::Body,
                    Some("data.__permissions__"),
                    "This field name is reserved",
                ));
            }
            Some(m)
        }
        Some(other) => {
            problems.push(InvalidDetail::new(
                Location::Body,
                Some("data"),
                format!(
                    "\"{}\" is not a mapping type: Does not implement dict-like functionality.",
                    python_str(&other)
                ),
            ));
            None
        }
    };
    let (permissions, raw_permissions) = match permissions {
        None => (None, None),
        Some(v) => match parse_permissions(resource, &v) {
            Ok(p) => (Some(p), v.as_object().cloned()),
            Err(ApiError::InvalidParameters { details, .. }) => {
                problems.extend(details);
                (None, None)
            }
            Err(e) => return Err(e),
        },
    };
    if !problems.is_empty() {
        return Err(ApiError::invalid_details(problems));
    }
    Ok(Envelope {
        data,
        permissions,
        raw_permissions,
    })
}

/// Validates what a resource's `data` must hold beyond being an object:
/// group `members` (spec 4.4).
pub fn validate_data(resource: Resource, data: &mut Map<String, Value>) -> Result<(), ApiError> {
    if resource != Resource::Group {
        return Ok(());
    }
    let members = data
        .entry("members")
        .or_insert_with(|| Value::Array(Vec::new()));
    let Value::Array(list) = members else {
        return Err(ApiError::invalid(
            Location::Body,
            Some("data.members"),
            format!("{members} is not iterable"),
        ));
    };
    for (i, m) in list.iter().enumerate() {
        let name = format!("data.members.{i}");
        let Value::String(s) = m else {
            return Err(ApiError::invalid(
                Location::Body,
                Some(&name),
                format!("{m} is not a string"),
            ));
        };
        if s.starts_with("/buckets/") || s == crate::request::EVERYONE {
            return Err(ApiError::invalid(
                Location::Body,
                Some(&name),
                format!("'{s}' is not a valid user ID."),
            ));
        }
    }
    Ok(())
}

/// A client-supplied `last_modified` in `data`, when it is an integer.
pub fn requested_timestamp(data: &Map<String, Value>) -> Option<u64> {
    data.get("last_modified").and_then(Value::as_u64)
}

/// Checks that a `data.id` in the body matches the URL's id.
pub fn check_body_id(data: &Map<String, Value>, id: &str) -> Result<(), ApiError> {
    match data.get("id") {
        None => Ok(()),
        Some(Value::String(s)) if s == id => Ok(()),
        Some(_) => Err(ApiError::invalid(
            Location::Body,
            Some("id"),
            "Object id does not match existing object",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelope_rules() {
        let e = parse_envelope(json!({"data": {"a": 1}}), Resource::Record).unwrap();
        assert_eq!(e.data.unwrap()["a"], 1);
        let err = parse_envelope(json!({"foo": 1}), Resource::Record).unwrap_err();
        assert_eq!(
            err.body()["message"],
            "Unrecognized keys in mapping: \"{'foo': 1}\""
        );
        assert!(parse_envelope(json!({"data": [1]}), Resource::Record).is_err());
        assert!(parse_envelope(json!({"data": null}), Resource::Record).is_err());
        assert!(parse_envelope(json!({"data": {"__permissions__": 1}}), Resource::Record).is_err());
    }

    #[test]
    fn group_members_rules() {
        let mut ok = json!({"members": ["alice", "system.Authenticated"]})
            .as_object()
            .unwrap()
            .clone();
        validate_data(Resource::Group, &mut ok).unwrap();
        let mut empty = Map::new();
        validate_data(Resource::Group, &mut empty).unwrap();
        assert_eq!(empty["members"], json!([]));
        for bad in [
            json!({"members": "x"}),
            json!({"members": ["/buckets/b/groups/g"]}),
            json!({"members": ["system.Everyone"]}),
            json!({"members": [1]}),
        ] {
            let mut m = bad.as_object().unwrap().clone();
            assert!(validate_data(Resource::Group, &mut m).is_err(), "{bad}");
        }
    }
}
