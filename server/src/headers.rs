//! Timestamps on the wire: the `If-Match` / `If-None-Match` preconditions,
//! the `ETag` and `Last-Modified` values, and the `_since` / `_before` /
//! `_to` query parameters.
//!
//! These are plain parsing and formatting functions; deciding what a
//! precondition means for a request (the table of spec section 7) is the
//! handlers' job. Error bodies follow the reference word for word, including
//! the way it reads numbers (Python's `json.loads`, then `int()`), because
//! clients and tests see them.

use std::time::{Duration, UNIX_EPOCH};

use http::HeaderValue;
use serde_json::Value;

use crate::errors::{python_str, ApiError, Location};

/// A parsed `If-Match` / `If-None-Match` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// `*`
    Any,
    /// `"123"`. A number too large for `u64` becomes `u64::MAX`, a timestamp
    /// no object has, so it behaves as "some other value" like in Kinto.
    Timestamp(u64),
}

const PRECONDITION_MESSAGE: &str = "The value should be integer between double quotes.";

/// Parses an `If-Match` / `If-None-Match` value: `"123"` or `*`. Anything
/// else (unquoted `123`, weak `W/"123"`, a list, `*abc`) is a 400, errno 107,
/// `"{header_name} in header: The value should be integer between double quotes."`.
/// (The reference answers `*abc` with a 500; we answer 400.)
pub fn parse_precondition(
    header_name: &str,
    value: &HeaderValue,
) -> Result<Precondition, ApiError> {
    let invalid = || ApiError::invalid(Location::Header, Some(header_name), PRECONDITION_MESSAGE);
    let bytes = value.as_bytes();
    if bytes == b"*" {
        return Ok(Precondition::Any);
    }
    let digits = bytes
        .strip_prefix(b"\"")
        .and_then(|rest| rest.strip_suffix(b"\""))
        .filter(|d| !d.is_empty() && d.iter().all(u8::is_ascii_digit))
        .ok_or_else(invalid)?;
    let timestamp = digits
        .iter()
        .try_fold(0u64, |acc, d| {
            acc.checked_mul(10)?.checked_add(u64::from(d - b'0'))
        })
        .unwrap_or(u64::MAX);
    Ok(Precondition::Timestamp(timestamp))
}

/// The `ETag` of a timestamp: `"123"` (with the quotes).
pub fn etag(ts: u64) -> String {
    format!("\"{ts}\"")
}

/// The `Last-Modified` of a timestamp in milliseconds: an RFC 7231 date,
/// seconds truncated, e.g. `Thu, 26 Nov 2026 11:03:31 GMT`.
pub fn http_date(ts_ms: u64) -> String {
    httpdate::fmt_http_date(UNIX_EPOCH + Duration::from_millis(ts_ms))
}

/// How far in the future a timestamp parameter may point: `T < now + 24 h`.
const MAX_FUTURE_MS: u64 = 24 * 3600 * 1000;
/// Kinto's upper bound for integer query parameters (`2**63`, inclusive).
const MAX_INTEGER: u128 = 1 << 63;

/// Parses a `_since` / `_before` / `_to` value (already percent-decoded):
/// an integer or a quoted integer (the raw `ETag`), with
/// `0 <= T < now_ms + 24 h`. Errors (400, errno 107, location `querystring`,
/// name `name`) as the reference words them:
///
/// * `abc`, `"abc"`, `true`, `0x10` → `"abc" is not a number`;
/// * `-1` → `-1 is less than minimum value 0`;
/// * `99999999999999999999` → `… is greater than maximum value 9223372036854775808`;
/// * empty, or `now + 24 h` and later → `Invalid value for _since`.
///
/// Like the reference, the value is first read as JSON (so `1.5` and `1e3`
/// are numbers, truncated to integers) and strings go through Python's
/// `int()` rules (surrounding spaces, a sign, `_` between digits).
/// One deviation: `null`, which the reference ignores (no filter), is
/// answered with `Invalid value for …`.
pub fn parse_timestamp_param(name: &str, value: &str, now_ms: u64) -> Result<u64, ApiError> {
    let invalid =
        |description: String| ApiError::invalid(Location::Querystring, Some(name), description);
    let invalid_value = || invalid(format!("Invalid value for {name}"));

    // QueryField: JSON-decode, except that booleans stay strings.
    let native = match serde_json::from_str::<Value>(value) {
        Ok(Value::Bool(_)) | Err(_) => Value::String(value.to_owned()),
        Ok(native) => native,
    };
    // colander.Integer: falsy values (other than 0) are "missing", which the
    // resource then rejects as an invalid value.
    let falsy = match &native {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    };
    if falsy {
        return Err(invalid_value());
    }
    let number = python_int(&native)
        .ok_or_else(|| invalid(format!("\"{}\" is not a number", python_str(&native))))?;
    if number.negative && !number.is_zero() {
        return Err(invalid(format!(
            "-{} is less than minimum value 0",
            number.digits
        )));
    }
    let magnitude = number.small();
    if magnitude.is_none_or(|m| m > MAX_INTEGER) {
        return Err(invalid(format!(
            "{} is greater than maximum value {MAX_INTEGER}",
            number.digits
        )));
    }
    match magnitude.and_then(|m| u64::try_from(m).ok()) {
        Some(ts) if ts < now_ms.saturating_add(MAX_FUTURE_MS) => Ok(ts),
        _ => Err(invalid_value()),
    }
}

/// An integer of any size, as Python's `int()` would hold it.
struct PyInt {
    negative: bool,
    /// Decimal digits of the magnitude, without leading zeros (`"0"` for zero).
    digits: String,
}

impl PyInt {
    fn is_zero(&self) -> bool {
        self.digits == "0"
    }
    /// The magnitude, when it fits in a `u128`.
    fn small(&self) -> Option<u128> {
        self.digits.parse().ok()
    }
}

/// Python's `int(x)` for what `json.loads` produced: numbers truncate,
/// strings follow `int(str)` for ASCII digits; anything else fails.
fn python_int(value: &Value) -> Option<PyInt> {
    match value {
        Value::Number(n) => {
            if let Some(u) = n.as_u64() {
                Some(PyInt {
                    negative: false,
                    digits: u.to_string(),
                })
            } else if let Some(i) = n.as_i64() {
                Some(PyInt {
                    negative: i < 0,
                    digits: i.unsigned_abs().to_string(),
                })
            } else {
                let f = n.as_f64()?.trunc();
                // `{:.0}` prints the exact integer value of the float, as
                // Python's int(float) does.
                let digits = format!("{:.0}", f.abs());
                Some(PyInt {
                    negative: f < 0.0,
                    digits,
                })
            }
        }
        Value::String(s) => python_int_str(s),
        _ => None,
    }
}

/// Python's `int(str)`, restricted to ASCII digits.
fn python_int_str(s: &str) -> Option<PyInt> {
    let s = s.trim();
    let (negative, rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let bytes = rest.as_bytes();
    if bytes.is_empty() || !bytes[0].is_ascii_digit() || !bytes[bytes.len() - 1].is_ascii_digit() {
        return None;
    }
    let mut digits = String::with_capacity(bytes.len());
    for (i, &b) in bytes.iter().enumerate() {
        match b {
            b'0'..=b'9' => digits.push(char::from(b)),
            // Underscores only singly, between digits.
            b'_' if bytes[i - 1] != b'_' => {}
            _ => return None,
        }
    }
    let trimmed = digits.trim_start_matches('0');
    let digits = if trimmed.is_empty() {
        "0".to_owned()
    } else {
        trimmed.to_owned()
    };
    Some(PyInt { negative, digits })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn hv(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("header value")
    }

    #[test]
    fn preconditions_accepted() {
        assert_eq!(
            parse_precondition("If-Match", &hv("*")).ok(),
            Some(Precondition::Any)
        );
        assert_eq!(
            parse_precondition("If-Match", &hv("\"123\"")).ok(),
            Some(Precondition::Timestamp(123))
        );
        assert_eq!(
            parse_precondition("If-Match", &hv("\"0\"")).ok(),
            Some(Precondition::Timestamp(0))
        );
        assert_eq!(
            parse_precondition("If-Match", &hv("\"007\"")).ok(),
            Some(Precondition::Timestamp(7))
        );
        assert_eq!(
            parse_precondition("If-Match", &hv("\"99999999999999999999999\"")).ok(),
            Some(Precondition::Timestamp(u64::MAX))
        );
    }

    #[test]
    fn preconditions_rejected_with_reference_body() {
        for bad in [
            "123",
            "W/\"123\"",
            "\"1\", \"2\"",
            "*abc",
            "\"\"",
            "\"-1\"",
            "\"12a\"",
            "\" 1\"",
            "**",
            "\"1",
        ] {
            let e = parse_precondition("If-None-Match", &hv(bad)).expect_err(bad);
            assert_eq!(
                e.body(),
                json!({"code": 400, "errno": 107, "error": "Invalid parameters",
                       "message": "If-None-Match in header: The value should be integer between double quotes.",
                       "details": [{"location": "header", "name": "If-None-Match",
                                    "description": "The value should be integer between double quotes."}]}),
                "{bad}"
            );
        }
    }

    #[test]
    fn etag_and_date() {
        assert_eq!(etag(1436171996916), "\"1436171996916\"");
        // Observed on the reference: ETag "1795691449426" ↔ this date.
        assert_eq!(http_date(1795691449426), "Thu, 26 Nov 2026 11:10:49 GMT");
        assert_eq!(http_date(1795691449999), "Thu, 26 Nov 2026 11:10:49 GMT");
        assert_eq!(http_date(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }

    const NOW: u64 = 1_795_698_000_000;

    fn error_body(name: &str, description: &str, message: &str) -> Value {
        json!({"code": 400, "errno": 107, "error": "Invalid parameters", "message": message,
               "details": [{"location": "querystring", "name": name, "description": description}]})
    }

    #[test]
    fn timestamps_accepted() {
        for (raw, expected) in [
            ("123", 123),
            ("\"123\"", 123),
            ("0", 0),
            ("-0", 0),
            ("007", 7),
            (" 123", 123),
            ("123 ", 123),
            ("+123", 123),
            ("1_000", 1000),
            ("1.5", 1),
            ("1e3", 1000),
            ("\" 42 \"", 42),
        ] {
            assert_eq!(
                parse_timestamp_param("_since", raw, NOW).ok(),
                Some(expected),
                "{raw}"
            );
        }
        let last_ok = NOW + MAX_FUTURE_MS - 1;
        assert_eq!(
            parse_timestamp_param("_since", &last_ok.to_string(), NOW).ok(),
            Some(last_ok)
        );
    }

    #[test]
    fn timestamps_not_a_number() {
        for (raw, shown) in [
            ("abc", "abc"),
            ("\"abc\"", "abc"),
            ("true", "true"),
            ("0x10", "0x10"),
            ("\"\"123\"\"", "\"\"123\"\""),
            (" ", " "),
            ("1__0", "1__0"),
            ("_1", "_1"),
            ("[1]", "[1]"),
            ("{\"a\": 1}", "{'a': 1}"),
            ("①", "①"),
        ] {
            let e = parse_timestamp_param("_since", raw, NOW).expect_err(raw);
            let description = format!("\"{shown}\" is not a number");
            assert_eq!(
                e.body(),
                error_body(
                    "_since",
                    &description,
                    &format!("_since in querystring: {description}")
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn timestamps_out_of_range() {
        for (raw, description) in [
            ("-1", "-1 is less than minimum value 0"),
            ("\"-5\"", "-5 is less than minimum value 0"),
            ("-1.5", "-1 is less than minimum value 0"),
            (
                "10000000000000000000",
                "10000000000000000000 is greater than maximum value 9223372036854775808",
            ),
            (
                "18446744073709551616",
                "18446744073709551616 is greater than maximum value 9223372036854775808",
            ),
            // Unquoted: read as a float first, as the reference does.
            (
                "99999999999999999999999",
                "99999999999999991611392 is greater than maximum value 9223372036854775808",
            ),
            // Quoted: Python's exact integer.
            (
                "\"99999999999999999999999\"",
                "99999999999999999999999 is greater than maximum value 9223372036854775808",
            ),
        ] {
            let e = parse_timestamp_param("_before", raw, NOW).expect_err(raw);
            assert_eq!(
                e.body(),
                error_body(
                    "_before",
                    description,
                    &format!("_before in querystring: {description}")
                ),
                "{raw}"
            );
        }
    }

    #[test]
    fn timestamps_invalid_value() {
        let too_far = (NOW + MAX_FUTURE_MS).to_string();
        for raw in [
            "",
            "\"\"",
            "null",
            "[]",
            "999999999999999",
            "9223372036854775808",
            "9223372036854775807",
            too_far.as_str(),
        ] {
            let e = parse_timestamp_param("_to", raw, NOW).expect_err(raw);
            assert_eq!(
                e.body(),
                error_body("_to", "Invalid value for _to", "Invalid value for _to"),
                "{raw}"
            );
        }
    }
}
