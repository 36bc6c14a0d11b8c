//! One parsed request: who is calling (user id and principals), what they
//! asked for, and the raw parts handlers need.

use axum::http::{HeaderMap, Method, Uri};
use bytes::Bytes;

use crate::errors::{ApiError, Location};
use crate::headers::{parse_precondition, Precondition};

/// Principal every caller has.
pub const EVERYONE: &str = "system.Everyone";
/// Principal every authenticated caller has.
pub const AUTHENTICATED: &str = "system.Authenticated";

/// Who is calling.
#[derive(Debug, Clone)]
pub struct Identity {
    pub user_id: Option<String>,
    /// `[user id, system.Authenticated, group URIs…, system.Everyone]`, the
    /// order Kinto shows in `GET /`.
    pub principals: Vec<String>,
}

impl Identity {
    pub fn anonymous() -> Self {
        Identity {
            user_id: None,
            principals: vec![EVERYONE.to_owned()],
        }
    }

    pub fn authenticated(user_id: String, groups: Vec<String>) -> Self {
        let mut principals = Vec::with_capacity(groups.len() + 3);
        principals.push(user_id.clone());
        principals.push(AUTHENTICATED.to_owned());
        principals.extend(groups);
        principals.push(EVERYONE.to_owned());
        Identity {
            user_id: Some(user_id),
            principals,
        }
    }

    /// The error for a caller who lacks a permission: 401 asks an anonymous
    /// caller to authenticate, 403 tells a known one they may not.
    pub fn denied(&self) -> ApiError {
        if self.user_id.is_some() {
            ApiError::forbidden()
        } else {
            ApiError::unauthorized()
        }
    }
}

/// The parts of an HTTP request the API handlers read.
#[derive(Debug, Clone)]
pub struct Ctx {
    pub request_id: String,
    pub method: Method,
    pub uri: Uri,
    pub headers: HeaderMap,
    /// Decoded query pairs, in order.
    pub query: Vec<(String, String)>,
    pub identity: Identity,
    pub body: Bytes,
}

/// A request id unique across restarts without a random-number syscall per
/// request: this process's start time (µs) and a counter.
pub fn next_request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::OnceLock;
    static START: OnceLock<u64> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let start = *START.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_micros() as u64)
            .unwrap_or(0)
    });
    format!("{start:x}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Conditional headers of a request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Conditions {
    pub if_match: Option<Precondition>,
    pub if_none_match: Option<Precondition>,
}

impl Ctx {
    pub fn query_value(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header_str(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn conditions(&self) -> Result<Conditions, ApiError> {
        let one = |name: &str| -> Result<Option<Precondition>, ApiError> {
            match self.headers.get(name) {
                Some(v) => parse_precondition(name, v).map(Some),
                None => Ok(None),
            }
        };
        Ok(Conditions {
            if_match: one("If-Match")?,
            if_none_match: one("If-None-Match")?,
        })
    }

    /// `scheme://host` as the client reached us, for absolute URLs.
    pub fn origin(&self) -> String {
        let host = self.header_str("host").unwrap_or("localhost");
        format!("http://{host}")
    }
}

/// Decodes a query string into pairs; `+` is a space, `%XX` bytes decode,
/// invalid UTF-8 is refused. A NUL decodes: each parameter's own parser
/// refuses it by name (filters answer "Invalid character 0x00").
pub fn parse_query(q: Option<&str>) -> Result<Vec<(String, String)>, ApiError> {
    let Some(q) = q else { return Ok(Vec::new()) };
    let mut out = Vec::new();
    for pair in q.split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let k = percent_decode(k)?;
        let v = percent_decode(v)?;
        out.push((k, v));
    }
    Ok(out)
}

fn percent_decode(s: &str) -> Result<String, ApiError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b => out.push(b),
        }
        i += 1;
    }
    let s = String::from_utf8(out).map_err(|_| {
        ApiError::invalid(Location::Querystring, None, "Invalid UTF-8 in query string")
    })?;
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_query_pairs() {
        let q = parse_query(Some("a=1&b=x+y&c=%22q%22&d&e=%zz&f=%4")).unwrap();
        assert_eq!(
            q,
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y".into()),
                ("c".into(), "\"q\"".into()),
                ("d".into(), "".into()),
                ("e".into(), "%zz".into()),
                ("f".into(), "%4".into()),
            ]
        );
        // A NUL decodes; the parameter's own parser refuses it by name.
        assert_eq!(
            parse_query(Some("a=%00")).unwrap(),
            vec![("a".into(), "\0".into())]
        );
        assert!(parse_query(Some("a=%ff")).is_err());
    }
}
