//! PATCH semantics (spec section 3): plain JSON (top-level merge),
//! JSON Merge Patch (RFC 7396) and JSON Patch (RFC 6902, with Kinto's set
//! operations on `/permissions/{read,write}/<principal>`), and the
//! `Response-Behavior` header.

use projections::{Permissions, Resource, StoredObject};
use serde_json::{json, Map, Value};

use crate::body::{parse_envelope, PatchKind};
use crate::errors::{python_str, ApiError, Location};
use crate::permissions::parse_permissions;

/// A parsed PATCH body, validated before it reaches the sequencer.
#[derive(Debug, Clone)]
pub enum PatchRequest {
    Plain {
        data: Option<Map<String, Value>>,
        permissions: Option<Map<String, Value>>,
    },
    Merge {
        data: Option<Map<String, Value>>,
        permissions: Option<Map<String, Value>>,
    },
    JsonPatch {
        ops: Vec<Value>,
    },
}

fn at_least_one() -> ApiError {
    ApiError::invalid(
        Location::Body,
        Some("data"),
        "Provide at least one of data or permissions",
    )
}

impl PatchRequest {
    pub fn parse(kind: PatchKind, body: Value, resource: Resource) -> Result<Self, ApiError> {
        match kind {
            PatchKind::JsonPatch => {
                let Value::Array(ops) = body else {
                    return Err(ApiError::invalid(
                        Location::Body,
                        None,
                        format!("{body} is not a list"),
                    ));
                };
                for (i, op) in ops.iter().enumerate() {
                    check_operation(i, op)?;
                }
                Ok(PatchRequest::JsonPatch { ops })
            }
            PatchKind::Plain | PatchKind::Merge => {
                // Validate the shape (unknown keys, data type, permission
                // names) with the envelope rules; `null` permission types
                // mean "empty this type" and pass validation as `[]`.
                let mut checked = body.clone();
                if let Some(Value::Object(p)) = checked.get_mut("permissions") {
                    for v in p.values_mut() {
                        if v.is_null() {
                            *v = json!([]);
                        }
                    }
                }
                let env = parse_envelope(checked, resource)?;
                if env.data.is_none() && env.permissions.is_none() {
                    return Err(at_least_one());
                }
                let permissions = body.get("permissions").and_then(Value::as_object).cloned();
                Ok(if kind == PatchKind::Plain {
                    PatchRequest::Plain {
                        data: env.data,
                        permissions,
                    }
                } else {
                    PatchRequest::Merge {
                        data: env.data,
                        permissions,
                    }
                })
            }
        }
    }

    /// The object's new data and permissions.
    pub fn apply(
        &self,
        obj: &StoredObject,
        resource: Resource,
    ) -> Result<(Map<String, Value>, Permissions), ApiError> {
        match self {
            PatchRequest::Plain { data, permissions } => {
                let mut d = obj.data.clone();
                if let Some(patch) = data {
                    for (k, v) in patch {
                        d.insert(k.clone(), v.clone());
                    }
                }
                let p = replace_permission_types(&obj.permissions, permissions.as_ref());
                Ok((d, p))
            }
            PatchRequest::Merge { data, permissions } => {
                let mut d = Value::Object(obj.data.clone());
                if let Some(patch) = data {
                    merge(&mut d, &Value::Object(patch.clone()));
                }
                let p = replace_permission_types(&obj.permissions, permissions.as_ref());
                Ok((into_map(d), p))
            }
            PatchRequest::JsonPatch { ops } => apply_json_patch(obj, resource, ops),
        }
    }
}

/// RFC 6902 operation names, in Kinto's order (its messages list them).
const OPERATIONS: &[&str] = &["test", "add", "remove", "replace", "move", "copy"];

/// The shape of operation `i`, with Kinto's (colander's) errors:
/// `0.op in body: Required`, `0.op in body: "x" is not one of test, add, …`,
/// `0.path in body: String does not match expected pattern`.
fn check_operation(i: usize, op: &Value) -> Result<(), ApiError> {
    let fail = |field: &str, description: String| {
        let name = if field.is_empty() {
            i.to_string()
        } else {
            format!("{i}.{field}")
        };
        Err(ApiError::invalid(Location::Body, Some(&name), description))
    };
    let Value::Object(m) = op else {
        return fail(
            "",
            format!(
                "\"{}\" is not a mapping type: Does not implement dict-like functionality.",
                python_str(op)
            ),
        );
    };
    for field in ["op", "path"] {
        match m.get(field) {
            None => return fail(field, "Required".into()),
            Some(Value::String(_)) => {}
            Some(other) => {
                return fail(
                    field,
                    format!("{} is not a string: {{'{field}': ''}}", python_str(other)),
                )
            }
        }
    }
    let name = m.get("op").and_then(Value::as_str).unwrap_or("");
    if !OPERATIONS.contains(&name) {
        return fail(
            "op",
            format!("\"{name}\" is not one of {}", OPERATIONS.join(", ")),
        );
    }
    if !m
        .get("path")
        .and_then(Value::as_str)
        .is_some_and(|p| p.starts_with('/'))
    {
        return fail("path", "String does not match expected pattern".into());
    }
    Ok(())
}

/// Each permission type sent replaces that type's list; `[]` or `null`
/// removes the type (plain JSON and merge-patch alike).
fn replace_permission_types(
    current: &Permissions,
    sent: Option<&Map<String, Value>>,
) -> Permissions {
    let mut p = current.clone();
    for (k, v) in sent.into_iter().flatten() {
        let list = principals(v);
        if list.is_empty() {
            p.remove(k);
        } else {
            p.insert(k.clone(), list);
        }
    }
    p
}

fn principals(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn into_map(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        _ => Map::new(),
    }
}

/// RFC 7396: objects merge recursively, `null` removes, anything else
/// replaces (a non-object target becomes an object first).
pub fn merge(target: &mut Value, patch: &Value) {
    let Value::Object(p) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    if let Value::Object(t) = target {
        for (k, v) in p {
            if v.is_null() {
                t.remove(k);
            } else {
                merge(t.entry(k.clone()).or_insert(Value::Null), v);
            }
        }
    }
}

fn patch_failed(reason: impl std::fmt::Display) -> ApiError {
    ApiError::invalid(
        Location::Body,
        None,
        format!("JSON Patch operation failed: {reason}"),
    )
}

fn apply_json_patch(
    obj: &StoredObject,
    resource: Resource,
    ops: &[Value],
) -> Result<(Map<String, Value>, Permissions), ApiError> {
    let mut doc = json!({
        "data": Value::Object(obj.data.clone()),
        "permissions": serde_json::to_value(&obj.permissions).unwrap_or_else(|_| json!({})),
    });
    for op in ops {
        let kind = op.get("op").and_then(Value::as_str).unwrap_or("");
        let path = op.get("path").and_then(Value::as_str).unwrap_or("");
        // Kinto treats `/permissions/{read,write}/<principal>` as set
        // membership: add or remove one principal.
        let segs: Vec<&str> = path.splitn(4, '/').collect();
        if let ["", "permissions", perm @ ("read" | "write"), principal] = segs.as_slice() {
            let principal = principal.replace("~1", "/").replace("~0", "~");
            let perms = doc["permissions"]
                .as_object_mut()
                .ok_or_else(|| patch_failed("permissions"))?;
            let list = perms.entry(perm.to_string()).or_insert_with(|| json!([]));
            let Value::Array(arr) = list else {
                return Err(patch_failed("permissions are not a list"));
            };
            match kind {
                "add" => {
                    if !arr.iter().any(|v| v.as_str() == Some(&principal)) {
                        arr.push(Value::String(principal));
                    }
                }
                "remove" => arr.retain(|v| v.as_str() != Some(&principal)),
                other => {
                    return Err(patch_failed(format!(
                        "operation {other} on a permission set"
                    )))
                }
            }
            continue;
        }
        let one: json_patch::Patch = serde_json::from_value(Value::Array(vec![op.clone()]))
            .map_err(|e| patch_failed(missing_member(&e.to_string())))?;
        json_patch::patch(&mut doc, &one).map_err(patch_failed)?;
    }
    let Value::Object(mut top) = doc else {
        return Err(patch_failed("document"));
    };
    let data = match top.remove("data") {
        Some(Value::Object(m)) => m,
        _ => {
            return Err(ApiError::invalid(
                Location::Body,
                Some("data"),
                "data is not a mapping type",
            ))
        }
    };
    let perms_value = top.remove("permissions").unwrap_or_else(|| json!({}));
    let perms = parse_permissions(resource, &perms_value)?;
    Ok((
        data,
        perms.into_iter().filter(|(_, v)| !v.is_empty()).collect(),
    ))
}

/// serde's "missing field `value`" in Kinto's words: "The operation does
/// not contain a 'value' member".
fn missing_member(message: &str) -> String {
    match message
        .strip_prefix("missing field `")
        .and_then(|rest| rest.split_once('`'))
    {
        Some((field, _)) => format!("The operation does not contain a '{field}' member"),
        None => message.to_owned(),
    }
}

/// What a PATCH answers with (`Response-Behavior`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseBehavior {
    Full,
    Light,
    Diff,
}

impl ResponseBehavior {
    pub fn from_header(v: Option<&str>) -> Result<Self, ApiError> {
        match v {
            None | Some("full") => Ok(ResponseBehavior::Full),
            Some("light") => Ok(ResponseBehavior::Light),
            Some("diff") => Ok(ResponseBehavior::Diff),
            Some(other) => Err(ApiError::invalid(
                Location::Header,
                Some("Response-Behavior"),
                format!("\"{other}\" is not one of full, light, diff"),
            )),
        }
    }

    /// `full`: the whole envelope; `light`: the keys sent; `diff`: the keys
    /// sent whose stored value differs from what was sent.
    pub fn render(self, request: &PatchRequest, stored: &StoredObject, full: Value) -> Value {
        let sent = match request {
            PatchRequest::Plain { data, .. } | PatchRequest::Merge { data, .. } => {
                data.clone().unwrap_or_default()
            }
            PatchRequest::JsonPatch { .. } => return full,
        };
        let pick = |keep_same: bool| {
            let mut out = Map::new();
            for (k, v) in &sent {
                if let Some(now) = stored.data.get(k) {
                    if keep_same || now != v {
                        out.insert(k.clone(), now.clone());
                    }
                }
            }
            json!({"data": Value::Object(out)})
        };
        match self {
            ResponseBehavior::Full => full,
            ResponseBehavior::Light => pick(true),
            ResponseBehavior::Diff => pick(false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(data: Value, perms: Value) -> StoredObject {
        StoredObject {
            last_modified: 1,
            data: data.as_object().unwrap().clone(),
            permissions: serde_json::from_value(perms).unwrap(),
        }
    }

    #[test]
    fn merge_patch_example_from_the_spec() {
        let o = obj(json!({"a":1,"o":{"x":1,"y":2},"l":[1,2]}), json!({}));
        let r = PatchRequest::parse(
            PatchKind::Merge,
            json!({"data":{"a":null,"o":{"x":null,"z":3},"l":[3]}}),
            Resource::Record,
        )
        .unwrap();
        let (d, _) = r.apply(&o, Resource::Record).unwrap();
        assert_eq!(Value::Object(d), json!({"o":{"y":2,"z":3},"l":[3]}));
    }

    #[test]
    fn plain_patch_replaces_top_level_and_permission_types() {
        let o = obj(
            json!({"a":{"x":1},"b":2}),
            json!({"read":["x"],"write":["w"]}),
        );
        let r = PatchRequest::parse(
            PatchKind::Plain,
            json!({"data":{"a":{"y":1},"c":null},"permissions":{"read":null}}),
            Resource::Record,
        )
        .unwrap();
        let (d, p) = r.apply(&o, Resource::Record).unwrap();
        assert_eq!(Value::Object(d), json!({"a":{"y":1},"b":2,"c":null}));
        assert_eq!(serde_json::to_value(p).unwrap(), json!({"write":["w"]}));
        assert!(PatchRequest::parse(PatchKind::Plain, json!({}), Resource::Record).is_err());
    }

    #[test]
    fn json_patch_with_permission_sets() {
        let o = obj(json!({"l":[1]}), json!({"write":["w"]}));
        let r = PatchRequest::parse(
            PatchKind::JsonPatch,
            json!([
                {"op":"add","path":"/data/l/-","value":2},
                {"op":"add","path":"/permissions/read/system.Everyone"},
                {"op":"remove","path":"/permissions/write/w"}
            ]),
            Resource::Record,
        )
        .unwrap();
        let (d, p) = r.apply(&o, Resource::Record).unwrap();
        assert_eq!(Value::Object(d), json!({"l":[1,2]}));
        assert_eq!(
            serde_json::to_value(p).unwrap(),
            json!({"read":["system.Everyone"]})
        );
        let bad = PatchRequest::parse(
            PatchKind::JsonPatch,
            json!([{"op":"test","path":"/data/l","value":[9]}]),
            Resource::Record,
        )
        .unwrap();
        assert!(bad.apply(&o, Resource::Record).is_err());
        // A string where a principal list belongs is refused, not split.
        let s = PatchRequest::parse(
            PatchKind::JsonPatch,
            json!([{"op":"add","path":"/permissions/read","value":"abc"}]),
            Resource::Record,
        )
        .unwrap();
        assert!(s.apply(&o, Resource::Record).is_err());
    }

    #[test]
    fn bad_json_patches_get_kintos_errors() {
        let o = obj(json!({"l":[1]}), json!({"write":["w"]}));
        let fails = |ops: Value| -> Value {
            match PatchRequest::parse(PatchKind::JsonPatch, ops, Resource::Record) {
                Err(e) => e.body()["details"][0].clone(),
                Ok(r) => r.apply(&o, Resource::Record).unwrap_err().body()["details"][0].clone(),
            }
        };
        let detail = |name: Value, description: &str| json!({"location": "body", "name": name, "description": description});
        assert_eq!(
            fails(json!([{"path": "/data/a", "value": 1}])),
            detail(json!("0.op"), "Required")
        );
        assert_eq!(
            fails(
                json!([{"op": "add", "path": "/data/a", "value": 1}, {"op": "bogus", "path": "/data/a"}])
            ),
            detail(
                json!("1.op"),
                "\"bogus\" is not one of test, add, remove, replace, move, copy"
            )
        );
        assert_eq!(
            fails(json!([{"op": "add", "path": "data/a", "value": 1}])),
            detail(json!("0.path"), "String does not match expected pattern")
        );
        assert_eq!(
            fails(json!([{"op": "add", "path": "/data/a"}])),
            detail(
                Value::Null,
                "JSON Patch operation failed: The operation does not contain a 'value' member"
            )
        );
        assert_eq!(
            fails(json!([{"op": "move", "path": "/data/a"}])),
            detail(
                Value::Null,
                "JSON Patch operation failed: The operation does not contain a 'from' member"
            )
        );
        let e = ResponseBehavior::from_header(Some("bogus")).unwrap_err();
        assert_eq!(
            e.body()["message"],
            "Response-Behavior in header: \"bogus\" is not one of full, light, diff"
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;

    /// Arbitrary JSON; patches get more nulls (they remove keys).
    fn arb_json(null_weight: u32) -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            null_weight => Just(Value::Null),
            1 => any::<bool>().prop_map(Value::Bool),
            1 => any::<i64>().prop_map(Value::from),
            1 => "[a-z]{0,4}".prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 4, |inner| {
            prop_oneof![
                1 => prop::collection::vec(inner.clone(), 0..3).prop_map(Value::Array),
                3 => prop::collection::btree_map("[a-e]{1,2}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn arb_object(null_weight: u32) -> impl Strategy<Value = Map<String, Value>> {
        prop::collection::btree_map("[a-e]{1,2}", arb_json(null_weight), 0..5)
            .prop_map(|m| m.into_iter().collect())
    }

    fn merged(target: &Value, patch: &Value) -> Value {
        let mut t = target.clone();
        merge(&mut t, patch);
        t
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// RFC 7396 is idempotent: applying a patch twice is applying it once.
        #[test]
        fn applying_twice_is_applying_once(t in arb_json(1), p in arb_json(2)) {
            let once = merged(&t, &p);
            prop_assert_eq!(merged(&once, &p), once);
        }

        /// `{}` changes no object.
        #[test]
        fn empty_patch_is_identity(t in arb_object(1)) {
            let t = Value::Object(t);
            prop_assert_eq!(merged(&t, &Value::Object(Map::new())), t);
        }

        /// `null` removes the key (present or not) and touches nothing else.
        #[test]
        fn null_removes(t in arb_object(1), k in "[a-e]{1,2}") {
            let mut want = t.clone();
            want.remove(&k);
            let p = serde_json::json!({ k.clone(): null });
            prop_assert_eq!(merged(&Value::Object(t), &p), Value::Object(want));
        }

        /// A patch that is not an object replaces the target; an object
        /// patch gives an object holding exactly the patch's non-null keys
        /// (besides the target's others, unchanged).
        #[test]
        fn shape_of_the_result(t in arb_json(1), p in arb_json(2)) {
            let r = merged(&t, &p);
            match &p {
                Value::Object(pm) => {
                    let rm = r.as_object().unwrap();
                    for (k, v) in pm {
                        prop_assert_eq!(rm.contains_key(k), !v.is_null());
                    }
                    if let Value::Object(tm) = &t {
                        for (k, v) in tm {
                            if !pm.contains_key(k) {
                                prop_assert_eq!(rm.get(k), Some(v));
                            }
                        }
                    }
                }
                other => prop_assert_eq!(&r, other),
            }
        }

        /// A PATCH with `application/merge-patch+json` is that merge on
        /// `data` (id and last_modified aside).
        #[test]
        fn merge_patch_request_is_the_merge(d in arb_object(0), p in arb_object(2)) {
            let stored = StoredObject {
                last_modified: 1,
                data: d.clone(),
                permissions: Default::default(),
            };
            let body = serde_json::json!({"data": Value::Object(p.clone())});
            let req = PatchRequest::parse(PatchKind::Merge, body, Resource::Record).unwrap();
            let (data, _) = req.apply(&stored, Resource::Record).unwrap();
            prop_assert_eq!(Value::Object(data), merged(&Value::Object(d), &Value::Object(p)));
        }
    }
}
