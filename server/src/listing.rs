//! Plural GET/HEAD/DELETE query parameters and how a page is produced:
//! `_limit`, `_token` pagination, `_since` / `_before` / `_to` (answered from
//! the log through the projections' change index, tombstones included).
//!
//! The default order (`-last_modified`) pages straight from the
//! projections' ordered index in O(page size).

use axum::http::{HeaderName, StatusCode, Uri};
use base64::Engine;
use projections::Resource;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use crate::errors::{ApiError, Location};
use crate::filters::{compare_objects, lookup, parse_filter, parse_sort, Filter, Op, SortKey};
use crate::headers::parse_timestamp_param;
use crate::request::Ctx;
use crate::response::{Exposure, Reply};
use crate::settings::Settings;
use crate::state::AppState;

/// One page of a list.
#[derive(Debug, Default)]
pub struct Page {
    pub items: Vec<Value>,
    /// Objects (not tombstones) matching the query, all pages together.
    pub total: u64,
    /// Token for the next page, when there is one.
    pub next_token: Option<String>,
}

/// Where the previous page stopped: the last item's sort values (by field
/// name, dotted names kept whole) and its id. Keyset pagination stays
/// correct while others write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub last: Map<String, Value>,
}

impl Token {
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).unwrap_or_default();
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(json)
    }

    pub fn decode(s: &str) -> Result<Token, ApiError> {
        // Kinto names no parameter here: "querystring: _token has invalid
        // content", `details[0].name` null.
        let bad = || ApiError::invalid(Location::Querystring, None, "_token has invalid content");
        let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|_| bad())?;
        let t: Token = serde_json::from_slice(&bytes).map_err(|_| bad())?;
        if !t.last.get("id").is_some_and(Value::is_string) {
            return Err(bad());
        }
        Ok(t)
    }

    fn of(keys: &[SortKey], obj: &Map<String, Value>) -> Token {
        let mut last = Map::new();
        for k in keys {
            if let Some(v) = lookup(obj, &k.field) {
                last.insert(k.field.clone(), v.clone());
            }
        }
        if let Some(id) = obj.get("id") {
            last.insert("id".into(), id.clone());
        }
        Token { last }
    }

    /// `(last_modified, id)` for the default order's fast path.
    fn position(&self) -> (u64, String) {
        (
            self.last
                .get("last_modified")
                .and_then(Value::as_u64)
                .unwrap_or(u64::MAX),
            self.last
                .get("id")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_owned(),
        )
    }
}

/// The parsed query of a plural request.
#[derive(Debug, Clone)]
pub struct ListQuery {
    pub limit: u64,
    pub token: Option<Token>,
    pub since: Option<u64>,
    pub before: Option<u64>,
    /// `_to` was used (deprecated: answer with an `Alert`).
    pub deprecated_to: bool,
    pub filters: Vec<Filter>,
    pub sort: Vec<SortKey>,
    /// `_fields`: keep only these (plus `id` and `last_modified`).
    pub fields: Option<Vec<String>>,
    /// Count every match (for `HEAD`'s `Total-Objects`); a GET skips it.
    pub need_total: bool,
    /// The list timestamp the answer's `ETag` carries: nothing newer is
    /// shown, so a poller using that ETag as its next `_since` sees every
    /// change exactly once even while writes land during the scan.
    pub snapshot: Option<u64>,
}

/// `_limit` as Kinto reads it (`colander.Integer`, range 0 to 2^63): the
/// value is JSON-decoded, a falsy one (empty, `null`, `""`) means "not
/// given", a float is truncated, and the error messages are colander's
/// (`"abc" is not a number`, `-1 is less than minimum value 0`). That is the
/// timestamp parameters' parser without their "not too far in the future"
/// bound.
fn parse_limit(raw: &str) -> Result<Option<u64>, ApiError> {
    let falsy = raw.trim().is_empty()
        || match serde_json::from_str::<Value>(raw) {
            Ok(Value::Null) => true,
            Ok(Value::String(s)) => s.is_empty(),
            Ok(Value::Array(a)) => a.is_empty(),
            Ok(Value::Object(o)) => o.is_empty(),
            _ => false,
        };
    if falsy {
        return Ok(None);
    }
    parse_timestamp_param("_limit", raw, u64::MAX).map(Some)
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ListQuery {
    pub fn parse(ctx: &Ctx, _resource: Resource, settings: &Settings) -> Result<Self, ApiError> {
        let now = now_ms();
        let max = settings.storage_max_fetch_size.max(1);
        let mut limit = settings
            .paginate_by
            .filter(|p| *p > 0)
            .unwrap_or(max)
            .min(max);
        if let Some(n) = ctx
            .query_value("_limit")
            .map(parse_limit)
            .transpose()?
            .flatten()
        {
            if n > 0 {
                limit = n.min(limit);
            }
        }
        let token = ctx
            .query_value("_token")
            .filter(|t| !t.is_empty())
            .map(Token::decode)
            .transpose()?;
        let ts = |name: &str| {
            ctx.query_value(name)
                .map(|v| parse_timestamp_param(name, v, now))
                .transpose()
        };
        let since = ts("_since")?;
        let before = ts("_before")?;
        let to = ts("_to")?;
        let mut filters = Vec::new();
        for (k, v) in &ctx.query {
            if k.starts_with('_') {
                continue;
            }
            let f = parse_filter(k, v)?;
            if f.on_last_modified() && f.op != Op::Has {
                for v in f
                    .value
                    .as_array()
                    .map(|a| a.to_vec())
                    .unwrap_or_else(|| vec![f.value.clone()])
                {
                    parse_timestamp_param(k, &v.to_string(), now)?;
                }
            }
            filters.push(f);
        }
        let sort = parse_sort(ctx.query_value("_sort"))?;
        // An empty `_fields` selects nothing, as in Kinto: whole objects.
        let fields = ctx
            .query_value("_fields")
            .map(parse_fields)
            .transpose()?
            .filter(|f| !f.is_empty());
        Ok(ListQuery {
            limit,
            token,
            since,
            before: before.or(to),
            deprecated_to: to.is_some(),
            filters,
            sort,
            fields,
            need_total: false,
            snapshot: None,
        })
    }

    fn default_sort(&self) -> bool {
        self.sort
            == [SortKey {
                field: "last_modified".into(),
                descending: true,
            }]
    }

    /// Tombstones are part of the answer only when the query is about
    /// time (spec section 8).
    fn changes_mode(&self) -> bool {
        self.since.is_some()
            || self.before.is_some()
            || self.filters.iter().any(Filter::on_last_modified)
    }

    fn keep(&self, obj: &Map<String, Value>) -> bool {
        let in_snapshot = match self.snapshot {
            Some(ts) => obj
                .get("last_modified")
                .and_then(Value::as_u64)
                .is_none_or(|lm| lm <= ts),
            None => true,
        };
        in_snapshot && self.filters.iter().all(|f| f.matches(obj))
    }

    /// Produces the page. `visible` says which ids the caller may see;
    /// `tombstones` whether deleted objects may be shown (only to readers of
    /// the whole list: a deleted object's own ACL is gone).
    pub fn run(
        &self,
        state: &AppState,
        parent: &str,
        resource: Resource,
        visible: &dyn Fn(&str) -> bool,
        tombstones: bool,
    ) -> Result<Page, ApiError> {
        if self.changes_mode() {
            return self.run_changes(state, parent, resource, visible, tombstones);
        }
        if self.default_sort() {
            return self.run_default(state, parent, resource, visible, tombstones);
        }
        let mut all = Vec::new();
        for obj in state.projections.list(parent, resource, None) {
            let obj = obj.map_err(ApiError::internal)?;
            if visible(obj.data.get("id").and_then(Value::as_str).unwrap_or(""))
                && self.keep(&obj.data)
            {
                all.push((obj.data, false));
            }
        }
        Ok(self.paginate(all))
    }

    /// Default order: straight from the ordered index, stopping once the
    /// page is full, so the cost is O(page) (divided by the filters'
    /// selectivity). The total is counted only when asked for (HEAD).
    fn run_default(
        &self,
        state: &AppState,
        parent: &str,
        resource: Resource,
        visible: &dyn Fn(&str) -> bool,
        all_visible: bool,
    ) -> Result<Page, ApiError> {
        let p = &state.projections;
        let after = self.token.as_ref().map(Token::position);
        let mut items = Vec::new();
        let mut next_token = None;
        for obj in p.list(parent, resource, after) {
            let obj = obj.map_err(ApiError::internal)?;
            let id = obj.data.get("id").and_then(Value::as_str).unwrap_or("");
            if !visible(id) || !self.keep(&obj.data) {
                continue;
            }
            if items.len() as u64 >= self.limit {
                if let Some(last) = items.last() {
                    next_token = Some(Token::of(&self.sort, last).encode());
                }
                break;
            }
            items.push(obj.data);
        }
        let total = if !self.need_total {
            0
        } else if all_visible && self.filters.is_empty() {
            p.count(parent, resource).map_err(ApiError::internal)?
        } else {
            let mut n = 0;
            for obj in p.list(parent, resource, None) {
                let obj = obj.map_err(ApiError::internal)?;
                if visible(obj.data.get("id").and_then(Value::as_str).unwrap_or(""))
                    && self.keep(&obj.data)
                {
                    n += 1;
                }
            }
            n
        };
        Ok(Page {
            items: items.into_iter().map(|o| self.project(o)).collect(),
            total,
            next_token,
        })
    }

    fn run_changes(
        &self,
        state: &AppState,
        parent: &str,
        resource: Resource,
        visible: &dyn Fn(&str) -> bool,
        tombstones: bool,
    ) -> Result<Page, ApiError> {
        let changes = state
            .projections
            .changes(parent, resource, self.since, self.before)
            .map_err(ApiError::internal)?;
        let mut all = Vec::new();
        for ch in changes {
            let (obj, deleted) = match ch.object {
                Some(o) if visible(&ch.id) => (o.data, false),
                None if tombstones => {
                    let mut m = Map::new();
                    m.insert("id".into(), Value::String(ch.id));
                    m.insert("last_modified".into(), Value::from(ch.last_modified));
                    m.insert("deleted".into(), Value::Bool(true));
                    (m, true)
                }
                _ => continue,
            };
            if self.keep(&obj) {
                all.push((obj, deleted));
            }
        }
        Ok(self.paginate(all))
    }

    /// Runs the query over objects that are not in the projections (a
    /// plugin's computed list: history entries, permissions): `_since` /
    /// `_before`, filters, sort, token, page. None is a tombstone.
    pub fn run_on(&self, items: Vec<Map<String, Value>>) -> Page {
        let ts = |o: &Map<String, Value>| o.get("last_modified").and_then(Value::as_u64);
        let all = items
            .into_iter()
            .filter(|o| self.since.is_none_or(|s| ts(o).is_some_and(|t| t > s)))
            .filter(|o| self.before.is_none_or(|b| ts(o).is_some_and(|t| t < b)))
            .filter(|o| self.keep(o))
            .map(|o| (o, false))
            .collect();
        self.paginate(all)
    }

    /// Sorts, skips past the token, cuts a page.
    fn paginate(&self, mut all: Vec<(Map<String, Value>, bool)>) -> Page {
        let total = all.iter().filter(|(_, deleted)| !deleted).count() as u64;
        all.sort_by(|a, b| compare_objects(&self.sort, &a.0, &b.0));
        let start = match &self.token {
            Some(t) => all.partition_point(|(o, _)| {
                compare_objects(&self.sort, o, &t.last) != std::cmp::Ordering::Greater
            }),
            None => 0,
        };
        let rest = &all[start.min(all.len())..];
        let take = (self.limit as usize).min(rest.len());
        let next_token = (rest.len() > take && take > 0)
            .then(|| Token::of(&self.sort, &rest[take - 1].0).encode());
        let items = rest[..take]
            .iter()
            .map(|(o, _)| self.project(o.clone()))
            .collect();
        Page {
            items,
            total,
            next_token,
        }
    }

    /// Applies `_fields` (keeping `id`, `last_modified` and, on tombstones,
    /// `deleted`).
    pub fn project(&self, obj: Map<String, Value>) -> Value {
        let Some(fields) = &self.fields else {
            return Value::Object(obj);
        };
        Value::Object(select_fields(&obj, fields))
    }

    /// The `Next-Page` URL: this request's URL with `_token` replaced and
    /// `_limit` set to the page size.
    pub fn next_page_url(&self, ctx: &Ctx, token: &str) -> String {
        let mut pairs: Vec<String> = ctx
            .query
            .iter()
            .filter(|(k, _)| k != "_token" && k != "_limit")
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        pairs.push(format!("_limit={}", self.limit));
        pairs.push(format!("_token={token}"));
        let uri: &Uri = &ctx.uri;
        format!("{}{}?{}", ctx.origin(), uri.path(), pairs.join("&"))
    }
}

impl ListQuery {
    /// A page as a plural answer: `{"data": [...]}` (empty with the counts
    /// on HEAD), `Next-Page` when more remain (never on HEAD), and
    /// `Cache-Control: no-cache, no-store` for authenticated callers.
    pub fn reply(&self, ctx: &Ctx, page: Page, timestamp: Option<u64>, head: bool) -> Reply {
        let mut reply = if head {
            let total = page.total.to_string();
            Reply::json(
                StatusCode::OK,
                json!({"data": []}),
                timestamp,
                Exposure::ListHead,
            )
            .with_header(HeaderName::from_static("total-objects"), total.clone())
            .with_header(HeaderName::from_static("total-records"), total)
        } else {
            Reply::json(
                StatusCode::OK,
                json!({"data": page.items}),
                timestamp,
                Exposure::List,
            )
        };
        if let Some(next) = page.next_token.filter(|_| !head) {
            reply = reply.with_header(
                HeaderName::from_static("next-page"),
                self.next_page_url(ctx, &next),
            );
        }
        if ctx.identity.user_id.is_some() {
            reply = reply.with_header(axum::http::header::CACHE_CONTROL, "no-cache, no-store");
        }
        reply
    }
}

/// Parses `_fields=a,o.b`; a NUL is refused (no field can hold one).
pub fn parse_fields(raw: &str) -> Result<Vec<String>, ApiError> {
    if raw.contains('\0') {
        return Err(ApiError::invalid(
            Location::Querystring,
            Some("_fields"),
            "Invalid character 0x00",
        ));
    }
    Ok(raw
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect())
}

/// Keeps the named (possibly dotted) fields, plus `id`, `last_modified`,
/// `deleted`; nested paths keep their enclosing objects.
pub fn select_fields(obj: &Map<String, Value>, fields: &[String]) -> Map<String, Value> {
    let mut out = Map::new();
    for k in ["id", "last_modified", "deleted"] {
        if let Some(v) = obj.get(k) {
            out.insert(k.into(), v.clone());
        }
    }
    for f in fields {
        if let Some(v) = obj.get(f.as_str()) {
            out.insert(f.clone(), v.clone());
            continue;
        }
        if let Some(v) = lookup(obj, f) {
            insert_path(&mut out, f, v.clone());
        }
    }
    out
}

/// Sets `a.b.c` in `out`, creating the enclosing objects.
fn insert_path(out: &mut Map<String, Value>, path: &str, v: Value) {
    match path.split_once('.') {
        None => {
            out.insert(path.to_owned(), v);
        }
        Some((head, rest)) => {
            let e = out
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !e.is_object() {
                *e = Value::Object(Map::new());
            }
            if let Value::Object(m) = e {
                insert_path(m, rest, v);
            }
        }
    }
}

/// Percent-encodes a query component.
fn encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_rejects_garbage() {
        let t = Token {
            last: serde_json::json!({"last_modified": 42, "id": "a-b"})
                .as_object()
                .unwrap()
                .clone(),
        };
        assert_eq!(Token::decode(&t.encode()).unwrap(), t);
        assert!(Token::decode("!!!").is_err());
        assert!(Token::decode("e30").is_err()); // "{}"
        let e = Token::decode("abc").unwrap_err();
        assert_eq!(
            e.body(),
            serde_json::json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                "message": "querystring: _token has invalid content",
                "details": [{"location": "querystring", "name": null,
                             "description": "_token has invalid content"}]})
        );
    }

    #[test]
    fn limit_is_read_as_kinto_reads_it() {
        assert_eq!(parse_limit("10").unwrap(), Some(10));
        assert_eq!(parse_limit("0").unwrap(), Some(0));
        assert_eq!(parse_limit("1.5").unwrap(), Some(1));
        assert_eq!(parse_limit("9223372036854775808").unwrap(), Some(1 << 63));
        for falsy in ["", "null", "\"\""] {
            assert_eq!(parse_limit(falsy).unwrap(), None, "{falsy:?}");
        }
        let description =
            |raw: &str| parse_limit(raw).unwrap_err().body()["details"][0]["description"].clone();
        assert_eq!(description("abc"), "\"abc\" is not a number");
        assert_eq!(description("-1"), "-1 is less than minimum value 0");
        assert_eq!(
            description("10000000000000000000"),
            "10000000000000000000 is greater than maximum value 9223372036854775808"
        );
    }
}

#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn arb_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            // Decimals of up to 15 significant digits: serde_json (without
            // its `float_roundtrip` feature) does not read every shortest
            // float text back to the same bits, see
            // `float_sort_values_survive_the_token` below.
            (any::<i32>(), 0..7i32).prop_map(|(m, k)| json!(f64::from(m) / 10f64.powi(k))),
            "\\PC{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map("\\PC{1,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    /// A token: the sort values of the last object (any JSON, dotted names
    /// kept whole) and its id.
    fn arb_token() -> impl Strategy<Value = Token> {
        (
            prop::collection::btree_map("[a-z_.]{1,10}", arb_json(), 0..4),
            "\\PC{1,40}",
        )
            .prop_map(|(values, id)| {
                let mut last: Map<String, Value> = values.into_iter().collect();
                last.insert("id".into(), Value::String(id));
                Token { last }
            })
    }

    /// A token carries the last object's sort values as JSON text: a float
    /// must come back with the same bits, or a `_sort` on a float field
    /// repeats (or skips) the object at a page boundary. serde_json reads
    /// `-919844198.7925799` (what it writes for those bits) one ULP off
    /// unless the workspace enables its `float_roundtrip` feature.
    #[test]
    fn float_sort_values_survive_the_token() {
        for f in [-919844198.7925799f64, 1.848726782973704e-186] {
            let mut last = Map::new();
            last.insert("n".into(), json!(f));
            last.insert("id".into(), json!("r"));
            let t = Token { last };
            assert_eq!(Token::decode(&t.encode()).unwrap(), t, "{f}");
        }
    }

    fn invalid_token(e: &ApiError) -> bool {
        e.body()["details"][0]["description"] == "_token has invalid content"
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// decode(encode(t)) == t, and the token is URL-safe as it is sent
        /// (no escaping needed in `Next-Page`).
        #[test]
        fn token_round_trips(t in arb_token()) {
            let s = t.encode();
            prop_assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{}", s);
            prop_assert_eq!(Token::decode(&s).unwrap(), t);
        }

        /// Decoding random text answers a token or the 400, never panics.
        #[test]
        fn decode_never_panics_on_text(s in "\\PC{0,64}") {
            if let Err(e) = Token::decode(&s) {
                prop_assert!(invalid_token(&e));
            }
        }

        /// Nor on valid base64 of random bytes, or of random JSON (which
        /// is a token only when it has the shape of one).
        #[test]
        fn decode_never_panics_on_base64(bytes in prop::collection::vec(any::<u8>(), 0..96), v in arb_json()) {
            let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
            for s in [b64.encode(&bytes), b64.encode(v.to_string())] {
                match Token::decode(&s) {
                    Ok(t) => prop_assert!(t.last.get("id").is_some_and(Value::is_string)),
                    Err(e) => prop_assert!(invalid_token(&e)),
                }
            }
            let wrapped = json!({"last": v});
            let s = b64.encode(wrapped.to_string());
            let shaped = wrapped["last"]["id"].is_string();
            prop_assert_eq!(Token::decode(&s).is_ok(), shaped);
        }

        /// `_limit` parsing answers for any text.
        #[test]
        fn limit_parsing_never_panics(s in "\\PC{0,24}") {
            let _ = parse_limit(&s);
        }
    }
}
