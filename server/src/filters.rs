//! Querystring filters on plural endpoints (spec section 9) and sorting
//! (section 10): parsing `field=value` / `<op>_<field>=value`, Kinto's value
//! typing, and the cross-type order (`null < string < number < boolean <
//! array < object < missing`).
//!
//! Where the reference's backends disagree or crash (regex `like_`, `has_`
//! overriding earlier filters, `contains_` on strings), this module does what
//! the spec says is meant: `*` is `like_`'s only wildcard and it matches only
//! strings, `contains_` matches only arrays, filters are a real AND.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::errors::{ApiError, Location};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Eq,
    Not,
    Lt,
    Gt,
    Min,
    Max,
    In,
    Exclude,
    Like,
    Has,
    Contains,
    ContainsAny,
}

/// Operator prefixes, longest first so `contains_any_` wins over `contains_`.
const PREFIXES: &[(&str, Op)] = &[
    ("contains_any_", Op::ContainsAny),
    ("contains_", Op::Contains),
    ("exclude_", Op::Exclude),
    ("like_", Op::Like),
    ("not_", Op::Not),
    ("min_", Op::Min),
    ("max_", Op::Max),
    ("has_", Op::Has),
    ("eq_", Op::Eq),
    ("lt_", Op::Lt),
    ("gt_", Op::Gt),
    ("in_", Op::In),
];

/// One parsed filter.
#[derive(Debug, Clone, PartialEq)]
pub struct Filter {
    pub field: String,
    pub op: Op,
    /// The typed value; a list for `in_`, `exclude_`, `contains_*`.
    pub value: Value,
}

impl Filter {
    /// Does this filter constrain `last_modified` (which makes tombstones
    /// part of the answer, spec section 8)?
    pub fn on_last_modified(&self) -> bool {
        self.field == "last_modified"
    }
}

/// Kinto's value typing: JSON when it parses, else the raw string.
pub fn typed(raw: &str) -> Value {
    serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_owned()))
}

fn invalid(param: &str) -> ApiError {
    ApiError::invalid(
        Location::Querystring,
        Some(param),
        format!("Invalid value for {param}"),
    )
}

/// Python's `[\w.]+`: letters, digits and `_` of any script, and dots.
fn valid_field(f: &str) -> bool {
    !f.is_empty()
        && f.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '.')
}

/// Parses one non-underscore query parameter into a filter. As in Kinto,
/// `<op>_<field>` is an operator only when the field is `[\w.]+`; any other
/// name (`due-date`, `a b`) is an equality filter on that whole name.
pub fn parse_filter(param: &str, raw: &str) -> Result<Filter, ApiError> {
    if param.contains('\0') || raw.contains('\0') {
        return Err(ApiError::invalid(
            Location::Querystring,
            Some(param),
            "Invalid character 0x00",
        ));
    }
    let (op, field) = PREFIXES
        .iter()
        .find_map(|(p, op)| param.strip_prefix(p).map(|f| (*op, f)))
        .filter(|(_, f)| valid_field(f))
        .unwrap_or((Op::Eq, param));
    if field.is_empty() {
        return Err(invalid(param));
    }
    let value = match op {
        Op::In | Op::Exclude => Value::Array(raw.split(',').map(typed).collect()),
        Op::Contains | Op::ContainsAny => match typed(raw) {
            Value::Array(a) => Value::Array(a),
            other => Value::Array(vec![other]),
        },
        Op::Has => Value::Bool(!matches!(raw, "" | "false" | "0")),
        Op::Like => match typed(raw) {
            Value::String(s) => Value::String(s),
            _ => return Err(invalid(param)),
        },
        _ => typed(raw),
    };
    match field {
        "id" => {
            let strings = match &value {
                Value::Array(a) => a.iter().all(Value::is_string),
                _ => true,
            };
            if !strings || matches!(op, Op::Contains | Op::ContainsAny) {
                return Err(if strings {
                    ApiError::invalid(
                        Location::Querystring,
                        Some(param),
                        "Field 'id' is not an array",
                    )
                } else {
                    invalid(param)
                });
            }
        }
        "last_modified" => {
            let ints = match &value {
                Value::Array(a) => a.iter().all(Value::is_u64),
                Value::Bool(_) if op == Op::Has => true,
                v => v.is_u64(),
            };
            if matches!(op, Op::Contains | Op::ContainsAny) {
                return Err(ApiError::invalid(
                    Location::Querystring,
                    Some(param),
                    "Field 'last_modified' is not an array",
                ));
            }
            if !ints {
                return Err(invalid(param));
            }
        }
        _ => {}
    }
    Ok(Filter {
        field: field.to_owned(),
        op,
        value,
    })
}

/// Looks a dotted field up: a key that itself holds the dots wins, then the
/// path walks into nested objects.
pub fn lookup<'a>(obj: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    if let Some(v) = obj.get(field) {
        return Some(v);
    }
    let (head, rest) = field.split_once('.')?;
    match obj.get(head)? {
        Value::Object(inner) => lookup(inner, rest),
        _ => None,
    }
}

fn type_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::String(_) => 1,
        Value::Number(_) => 2,
        Value::Bool(_) => 3,
        Value::Array(_) => 4,
        Value::Object(_) => 5,
    }
}

/// Total order over JSON values as Kinto's backends compare them.
pub fn compare(a: &Value, b: &Value) -> Ordering {
    match (a, b) {
        (Value::String(x), Value::String(y)) => x.cmp(y),
        (Value::Number(x), Value::Number(y)) => match (x.as_i64(), y.as_i64()) {
            (Some(i), Some(j)) => i.cmp(&j),
            _ => x
                .as_f64()
                .unwrap_or(0.0)
                .partial_cmp(&y.as_f64().unwrap_or(0.0))
                .unwrap_or(Ordering::Equal),
        },
        (Value::Bool(x), Value::Bool(y)) => x.cmp(y),
        (Value::Array(x), Value::Array(y)) => {
            for (i, j) in x.iter().zip(y) {
                let c = compare(i, j);
                if c != Ordering::Equal {
                    return c;
                }
            }
            x.len().cmp(&y.len())
        }
        (Value::Object(x), Value::Object(y)) => {
            // Objects compare by their serialization: stable, if arbitrary.
            Value::Object(x.clone())
                .to_string()
                .cmp(&Value::Object(y.clone()).to_string())
        }
        _ => type_rank(a).cmp(&type_rank(b)),
    }
}

/// Compares a possibly missing value: missing is above everything.
pub fn compare_opt(a: Option<&Value>, b: Option<&Value>) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => compare(x, y),
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

fn equal(a: &Value, b: &Value) -> bool {
    type_rank(a) == type_rank(b) && compare(a, b) == Ordering::Equal
}

fn like(pattern: &str, s: &str) -> bool {
    let p = pattern.to_lowercase();
    let s = s.to_lowercase();
    let parts: Vec<&str> = p.split('*').collect();
    if parts.len() == 1 {
        return s.contains(&p);
    }
    // Anchored at both ends only by an explicit pattern without leading or
    // trailing `*`; Kinto's `like_` without `*` means "anywhere", and with
    // `*` the pieces must appear in order.
    let mut pos = 0;
    for (i, part) in parts.iter().enumerate() {
        if part.is_empty() {
            continue;
        }
        match s[pos..].find(part) {
            Some(found) => {
                if i == 0 && found != 0 {
                    return false;
                }
                pos += found + part.len();
            }
            None => return false,
        }
    }
    match parts.last() {
        Some(last) if !last.is_empty() => s.ends_with(last),
        _ => true,
    }
}

impl Filter {
    /// Does the object match?
    pub fn matches(&self, obj: &Map<String, Value>) -> bool {
        let field = lookup(obj, &self.field);
        match self.op {
            Op::Has => field.is_some() == (self.value == Value::Bool(true)),
            Op::Eq => field.is_some_and(|v| equal(v, &self.value)),
            Op::Not => !field.is_some_and(|v| equal(v, &self.value)),
            Op::Lt => compare_opt(field, Some(&self.value)) == Ordering::Less,
            Op::Gt => compare_opt(field, Some(&self.value)) == Ordering::Greater,
            Op::Min => compare_opt(field, Some(&self.value)) != Ordering::Less,
            Op::Max => compare_opt(field, Some(&self.value)) != Ordering::Greater,
            Op::In => field.is_some_and(|v| self.list().iter().any(|x| equal(v, x))),
            Op::Exclude => !field.is_some_and(|v| self.list().iter().any(|x| equal(v, x))),
            Op::Like => match (field, &self.value) {
                (Some(Value::String(s)), Value::String(p)) => like(p, s),
                _ => false,
            },
            Op::Contains => match field {
                Some(Value::Array(a)) => self.list().iter().all(|x| a.iter().any(|y| equal(x, y))),
                _ => false,
            },
            Op::ContainsAny => match field {
                Some(Value::Array(a)) => self.list().iter().any(|x| a.iter().any(|y| equal(x, y))),
                _ => false,
            },
        }
    }

    fn list(&self) -> &[Value] {
        match &self.value {
            Value::Array(a) => a,
            _ => &[],
        }
    }
}

/// One `_sort` key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SortKey {
    pub field: String,
    pub descending: bool,
}

/// Parses `_sort=f1,-f2,+f3`; `-last_modified` is appended as the final
/// tie-breaker when absent. `None` means the default order.
pub fn parse_sort(raw: Option<&str>) -> Result<Vec<SortKey>, ApiError> {
    let mut keys = Vec::new();
    if let Some(raw) = raw {
        for part in raw.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (descending, field) = match part.as_bytes()[0] {
                b'-' => (true, &part[1..]),
                b'+' => (false, &part[1..]),
                _ => (false, part),
            };
            if !valid_field(field) {
                return Err(ApiError::invalid(
                    Location::Querystring,
                    Some("_sort"),
                    format!("Invalid value for _sort: {part}"),
                ));
            }
            keys.push(SortKey {
                field: field.to_owned(),
                descending,
            });
        }
    }
    if !keys.iter().any(|k| k.field == "last_modified") {
        keys.push(SortKey {
            field: "last_modified".into(),
            descending: true,
        });
    }
    Ok(keys)
}

/// Compares two objects by the sort keys, then by id for a total order.
pub fn compare_objects(
    keys: &[SortKey],
    a: &Map<String, Value>,
    b: &Map<String, Value>,
) -> Ordering {
    for k in keys {
        let c = compare_opt(lookup(a, &k.field), lookup(b, &k.field));
        let c = if k.descending { c.reverse() } else { c };
        if c != Ordering::Equal {
            return c;
        }
    }
    let id = |o: &Map<String, Value>| o.get("id").and_then(Value::as_str).unwrap_or("").to_owned();
    id(b).cmp(&id(a))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn objs() -> Vec<Map<String, Value>> {
        [
            json!({"id":"a","n":1}),
            json!({"id":"b","n":9}),
            json!({"id":"c","n":null}),
            json!({"id":"d"}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect()
    }

    fn ids(param: &str, raw: &str) -> Vec<String> {
        let f = parse_filter(param, raw).unwrap();
        objs()
            .into_iter()
            .filter(|o| f.matches(o))
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn missing_fields_rank_above_everything() {
        assert_eq!(ids("gt_n", "5"), ["b", "d"]);
        assert_eq!(ids("lt_n", "5"), ["a", "c"]);
        assert_eq!(ids("not_n", "1"), ["b", "c", "d"]);
        assert_eq!(ids("n", "1"), ["a"]);
        assert_eq!(ids("in_n", "1,9"), ["a", "b"]);
        assert_eq!(ids("exclude_n", "1"), ["b", "c", "d"]);
        assert_eq!(ids("has_n", "true"), ["a", "b", "c"]);
        assert_eq!(ids("has_n", ""), ["d"]);
        assert_eq!(ids("n", "null"), ["c"]);
    }

    #[test]
    fn typing_and_like_and_contains() {
        let o = json!({"s":"Hello","t":["a","b"],"q":"7","o":{"x":2},"dotted.key":1})
            .as_object()
            .unwrap()
            .clone();
        let m = |p: &str, v: &str| parse_filter(p, v).unwrap().matches(&o);
        assert!(m("like_s", "ell"));
        assert!(m("like_s", "h*o"));
        assert!(!m("like_s", "x*"));
        assert!(m("q", "\"7\""));
        assert!(!m("q", "7"));
        assert!(m("contains_t", "[\"a\",\"b\"]"));
        assert!(m("contains_t", "a"));
        assert!(!m("contains_t", "a,b"));
        assert!(m("contains_any_t", "[\"z\",\"b\"]"));
        assert!(!m("contains_s", "[\"H\"]"));
        assert!(m("o.x", "2"));
        assert!(m("min_o.x", "2"));
        assert!(m("dotted.key", "1"));
        assert!(parse_filter("like_s", "123").is_err());
        assert!(parse_filter("in_id", "1,2").is_err());
        assert!(parse_filter("gt_last_modified", "abc").is_err());
        // Any other name is an equality filter on the whole name.
        let o = json!({"due-date": "x", "a b": 1, "min_a-b": 2})
            .as_object()
            .unwrap()
            .clone();
        let f = parse_filter("due-date", "\"x\"").unwrap();
        assert_eq!((f.op, f.field.as_str()), (Op::Eq, "due-date"));
        assert!(f.matches(&o));
        assert!(parse_filter("a b", "1").unwrap().matches(&o));
        let f = parse_filter("min_a-b", "2").unwrap();
        assert_eq!((f.op, f.field.as_str()), (Op::Eq, "min_a-b"));
        assert!(f.matches(&o));
        let f = parse_filter("has_título", "1").unwrap();
        assert_eq!((f.op, f.field.as_str()), (Op::Has, "título"));
    }

    #[test]
    fn sort_order_across_types() {
        let mut v: Vec<Map<String, Value>> = [
            json!({"id":"1","n":10}),
            json!({"id":"2","n":"7"}),
            json!({"id":"3","n":2.5}),
            json!({"id":"4","n":1}),
            json!({"id":"5"}),
            json!({"id":"6","n":false}),
        ]
        .into_iter()
        .map(|v| v.as_object().unwrap().clone())
        .collect();
        let keys = parse_sort(Some("n")).unwrap();
        v.sort_by(|a, b| compare_objects(&keys, a, b));
        let got: Vec<&str> = v.iter().map(|o| o["id"].as_str().unwrap()).collect();
        assert_eq!(got, ["2", "4", "3", "1", "6", "5"]);
        assert_eq!(
            parse_sort(None).unwrap(),
            vec![SortKey {
                field: "last_modified".into(),
                descending: true
            }]
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// Arbitrary JSON without NUL characters (those are refused earlier).
    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Decimals (serde_json parses up to 15 significant digits
            // exactly; see listing.rs for longer ones).
            (any::<i32>(), 0..7i32).prop_map(|(m, k)| json!(f64::from(m) / 10f64.powi(k))),
            "[a-zA-Z0-9 *_.,\"é]{0,8}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("[a-z.]{1,3}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    fn op_of(i: usize) -> (&'static str, Op) {
        PREFIXES.get(i).copied().unwrap_or(("", Op::Eq))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever the parameter and value, parsing answers (a filter or a
        /// 400), and a parsed filter can be evaluated on any object.
        #[test]
        fn parsing_never_panics(param in "\\PC{0,24}", raw in "\\PC{0,24}", obj in arb_json()) {
            if let Ok(f) = parse_filter(&param, &raw) {
                if let Value::Object(o) = &obj {
                    let _ = f.matches(o);
                }
            }
            let _ = parse_sort(Some(&raw));
            let _ = parse_sort(Some(&param));
        }

        /// The same with parameters made of operator prefixes and the
        /// characters that matter (`_`, `.`, `,`, `*`, quotes, brackets).
        #[test]
        fn parsing_operator_soup_never_panics(
            op in 0..=PREFIXES.len(),
            field in "[a-z_.\\-]{0,10}",
            raw in "[a-z0-9,*\\[\\]\"{}:. \\-]{0,16}",
            obj in arb_json(),
        ) {
            let param = format!("{}{field}", op_of(op).0);
            if let Ok(f) = parse_filter(&param, &raw) {
                if let Value::Object(o) = &obj {
                    let _ = f.matches(o);
                }
            }
        }

        /// `<op>_<field>` parses back to that operator and field, for every
        /// operator and any `[\w.]+` field that does not itself start with
        /// an operator keyword (then the first keyword wins, as in Kinto).
        #[test]
        fn op_and_field_round_trip(op in 0..=PREFIXES.len(), field in "[A-Za-z0-9_.é]{1,12}") {
            prop_assume!(!PREFIXES.iter().any(|(p, _)| field.starts_with(p)));
            prop_assume!(field != "id" && field != "last_modified");
            let (prefix, want) = op_of(op);
            let param = format!("{prefix}{field}");
            let f = parse_filter(&param, "\"abc\"").unwrap();
            prop_assert_eq!((f.op, f.field.as_str()), (want, field.as_str()));
        }

        /// Kinto's value typing: a JSON-encoded value filters as itself, and
        /// the comparison operators agree with equality on that value.
        #[test]
        fn a_json_value_filters_as_itself(v in arb_json()) {
            let raw = v.to_string();
            let f = parse_filter("k", &raw).unwrap();
            prop_assert_eq!(&f.value, &v);
            let obj = json!({"k": v.clone()}).as_object().unwrap().clone();
            let m = |p: &str| parse_filter(p, &raw).unwrap().matches(&obj);
            prop_assert!(m("k") && m("eq_k") && m("min_k") && m("max_k"));
            prop_assert!(!m("not_k") && !m("lt_k") && !m("gt_k"));
            // A missing field is above the value.
            let empty = Map::new();
            let e = |p: &str| parse_filter(p, &raw).unwrap().matches(&empty);
            prop_assert!(e("gt_k") && e("min_k") && e("not_k"));
            prop_assert!(!e("k") && !e("lt_k") && !e("max_k"));
        }

        /// Anything that is not JSON is kept as the raw string.
        #[test]
        fn non_json_values_stay_strings(raw in "[a-z][a-z0-9 ]{0,10}") {
            prop_assume!(serde_json::from_str::<Value>(&raw).is_err());
            prop_assert_eq!(typed(&raw), Value::String(raw.clone()));
        }

        /// The order used for filters and `_sort` is a total order:
        /// reflexive and antisymmetric.
        #[test]
        fn compare_is_a_total_order(a in arb_json(), b in arb_json()) {
            prop_assert_eq!(compare(&a, &a), Ordering::Equal);
            prop_assert_eq!(compare(&a, &b), compare(&b, &a).reverse());
        }
    }
}
