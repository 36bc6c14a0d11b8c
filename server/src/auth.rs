//! Who is calling: Kinto's legacy Basic Auth user ids and a request's
//! principals.
//!
//! Kinto's `basicauth` policy accepts every `user:password` pair: the user
//! id is `basicauth:` + hex HMAC-SHA256 of `"user:password"` keyed with the
//! `userid_hmac_secret` setting. Bad credentials never produce an error; the
//! request is simply anonymous. Reading the header follows Pyramid's
//! `extract_http_basic_credentials` step by step (lenient base64, UTF-8 with
//! a Latin-1 fallback) so that every header the reference accepts gives the
//! same user id here; the known answers in the tests come from Kinto 26.5.

use hmac::{Hmac, Mac};
use http::HeaderValue;
use sha2::Sha256;

/// The principal every request has, anonymous or not.
pub const EVERYONE: &str = "system.Everyone";
/// The principal every authenticated request has.
pub const AUTHENTICATED: &str = "system.Authenticated";
/// Prefix of Basic Auth user ids.
pub const BASICAUTH_PREFIX: &str = "basicauth:";

/// Lowercase hex of HMAC-SHA256(key = `secret`, message = `message`), both
/// as UTF-8 (Kinto's `hmac_digest`). An empty key is valid.
pub fn hmac_sha256_hex(secret: &str, message: &str) -> String {
    // HMAC accepts keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC-SHA256 takes keys of any length"),
    };
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Kinto's Basic Auth user id: `"basicauth:" + hmac_sha256_hex(secret, "user:password")`.
///
/// `None` (anonymous) when the header is missing or empty, the scheme is not
/// `Basic` (any case), the credentials are not base64 (read leniently, as
/// Python's `b64decode`: characters outside the alphabet are skipped, data
/// after the padding is ignored, but the padding must be right), there is no
/// `:`, or the user name is empty. Credentials that are not UTF-8 are read
/// as Latin-1, as the reference does; a NUL byte is an ordinary character.
/// The password may be empty and may contain `:`.
pub fn basic_auth_userid(
    authorization: Option<&HeaderValue>,
    userid_hmac_secret: &str,
) -> Option<String> {
    let (user, password) = basic_credentials(authorization?.as_bytes())?;
    if user.is_empty() {
        return None;
    }
    let digest = hmac_sha256_hex(userid_hmac_secret, &format!("{user}:{password}"));
    Some(format!("{BASICAUTH_PREFIX}{digest}"))
}

/// The principals of a request (spec 4.4): `["system.Everyone"]` when
/// anonymous; otherwise the user id, `system.Everyone`,
/// `system.Authenticated` and the URIs of the groups the user is a member
/// of (directly or through `system.Authenticated` membership).
pub fn principals(user_id: Option<&str>, group_uris: &[String]) -> Vec<String> {
    match user_id {
        None => vec![EVERYONE.to_owned()],
        Some(user_id) => {
            let mut principals = Vec::with_capacity(3 + group_uris.len());
            principals.push(user_id.to_owned());
            principals.push(AUTHENTICATED.to_owned());
            principals.extend(group_uris.iter().cloned());
            principals.push(EVERYONE.to_owned());
            principals
        }
    }
}

/// `(user, password)` of a Basic `Authorization` header (for the accounts
/// policy), read exactly as [`basic_auth_userid`] reads it.
pub fn basic_credentials_of(authorization: &HeaderValue) -> Option<(String, String)> {
    basic_credentials(authorization.as_bytes())
}

/// `(user, password)` from an `Authorization` value, as Pyramid reads it.
fn basic_credentials(header: &[u8]) -> Option<(String, String)> {
    // `authorization.split(' ', 1)`; the scheme compared case-insensitively.
    let space = header.iter().position(|&b| b == b' ')?;
    let (scheme, encoded) = (&header[..space], &header[space + 1..]);
    if !scheme.eq_ignore_ascii_case(b"basic") {
        return None;
    }
    let decoded = lenient_base64_decode(encoded)?;
    let text = match String::from_utf8(decoded) {
        Ok(text) => text,
        // Latin-1: every byte is the code point of the same value.
        Err(err) => err.into_bytes().iter().map(|&b| char::from(b)).collect(),
    };
    let (user, password) = text.split_once(':')?;
    Some((user.to_owned(), password.to_owned()))
}

/// Python's non-strict `base64.b64decode` (`binascii.a2b_base64`):
/// bytes outside the standard alphabet are skipped; a `=` ends the data once
/// the quantum is complete (anything after is ignored) and is otherwise
/// skipped; a dangling partial quantum is an error ("Incorrect padding").
/// Non-ASCII input is an error too (Python refuses it before decoding).
fn lenient_base64_decode(input: &[u8]) -> Option<Vec<u8>> {
    if !input.is_ascii() {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() / 4 * 3);
    let mut quad_pos = 0u8;
    let mut left = 0u32;
    let mut pads = 0u8;
    for &byte in input {
        if byte == b'=' {
            if quad_pos >= 2 {
                pads += 1;
                if quad_pos + pads >= 4 {
                    return Some(out);
                }
            }
            continue;
        }
        let Some(sextet) = base64_value(byte) else {
            continue;
        };
        let sextet = u32::from(sextet);
        match quad_pos {
            0 => {
                left = sextet;
                quad_pos = 1;
            }
            1 => {
                out.push(((left << 2) | (sextet >> 4)) as u8);
                left = sextet & 0x0f;
                quad_pos = 2;
            }
            2 => {
                out.push(((left << 4) | (sextet >> 2)) as u8);
                left = sextet & 0x03;
                quad_pos = 3;
            }
            _ => {
                out.push(((left << 6) | sextet) as u8);
                left = 0;
                quad_pos = 0;
            }
        }
    }
    (quad_pos == 0).then_some(out)
}

fn base64_value(byte: u8) -> Option<u8> {
    match byte {
        b'A'..=b'Z' => Some(byte - b'A'),
        b'a'..=b'z' => Some(byte - b'a' + 26),
        b'0'..=b'9' => Some(byte - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use base64::Engine;

    use super::*;

    /// The secret of `shared/reference/start-kinto`.
    const REF_SECRET: &str = "kinto-reference-userid-secret";

    fn header(s: &str) -> HeaderValue {
        HeaderValue::from_str(s).expect("header value")
    }

    fn basic(credentials: &[u8]) -> HeaderValue {
        header(&format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        ))
    }

    fn id(value: &HeaderValue) -> Option<String> {
        basic_auth_userid(Some(value), REF_SECRET)
    }

    #[test]
    fn spec_vectors_with_s3cr3t() {
        // api-around.md 1.2, userid_hmac_secret = s3cr3t.
        for (credentials, expected) in [
            (
                "alice:wonderland",
                "c04127fd1715748ea49a5f9f7f3e50913287c0830d8aa4fb5a1e10f57914bdb5",
            ),
            (
                "alice:",
                "ceb944757fc52cef6754a83ed56d5af0f55d2819c15f7d9b89df629a98dc6ef8",
            ),
            (
                "ali:ce:pw",
                "2f14f7ca84a859a30170a711df38020dec5d4e158b3532706a015d82375cc555",
            ),
            (
                "admin:wrong",
                "ff337e42f7b44aaf969838edaaabdcd1b97d0fd910407c63b592d3a7d08e51c0",
            ),
        ] {
            let got = basic_auth_userid(Some(&basic(credentials.as_bytes())), "s3cr3t");
            assert_eq!(got, Some(format!("basicauth:{expected}")), "{credentials}");
        }
    }

    /// Observed with `curl` against Kinto 26.5.0 started by
    /// `shared/reference/start-kinto` (user.id of `GET /v1/`).
    #[test]
    fn reference_known_answers() {
        for (credentials, expected) in [
            (
                &b"alice:secret"[..],
                "4484add49eed301d384360d7b2c128bfd90ca4ec91ab770965eeb46e91286037",
            ),
            (
                b"alice:wonderland",
                "47d60e135a44e8258bf7be970fb307908655573b90d6b7ee8cef27da45986117",
            ),
            (
                b"ali:ce:pw",
                "b3d9cb59675bb82204a5041d4efeb08e12de35ada3810ffca6d78b6f85b5fd1b",
            ),
            (
                b"alice:",
                "084d1bab860e59b0a4c7ca0d5f120b09408399f6ef2b66cba8a984b65252b20b",
            ),
            (
                b"a:b:c",
                "941d24ad957ac194719cd9906cd40f2f0a310beb7fd8c4028078a8f1a54bf12c",
            ),
            (
                b"al:b",
                "1a9ad92ef3beeb8863aa32c29b3832765523af13f44d2342bc4df60df038c1ef",
            ),
            (
                b"a\x00b:pw",
                "54787c7be2b2e946a9bc9c89e76a4170f58be9a31f46175740689c073a3f2280",
            ),
            (
                b"ab:p\x00w",
                "aaf9c86c35a1f1b5f5acf8e12dfbdc334412df830d69bccf44e5b498cc86645b",
            ),
            // "é:pw" in UTF-8, and in Latin-1 (not UTF-8: read as Latin-1).
            (
                "é:pw".as_bytes(),
                "0a95bfc5dec83abfbd6da2ffd6386d2657ca5687d00be87c009e98e5027109d3",
            ),
            (
                b"\xe9:pw",
                "0a95bfc5dec83abfbd6da2ffd6386d2657ca5687d00be87c009e98e5027109d3",
            ),
            (
                b"\xfb\xff:pw>?",
                "0113f3fb82dc8c3813d2f9df2a5de9f4bb4a878f14a422d8b28a65d4e145a832",
            ),
        ] {
            assert_eq!(
                id(&basic(credentials)),
                Some(format!("basicauth:{expected}")),
                "{credentials:?}"
            );
        }
    }

    #[test]
    fn header_forms_the_reference_accepts() {
        let alice = Some(
            "basicauth:4484add49eed301d384360d7b2c128bfd90ca4ec91ab770965eeb46e91286037".to_owned(),
        );
        let b64 = "YWxpY2U6c2VjcmV0"; // alice:secret
        for accepted in [
            format!("basic {b64}"),
            format!("BASIC {b64}"),
            format!("Basic  {b64}"),
            format!("Basic {b64} "),
            "Basic YWxp*Y2U6c2VjcmV0".to_owned(),
            "Basic YWxp Y2U6c2VjcmV0".to_owned(),
            format!("Basic ={b64}"),
        ] {
            assert_eq!(id(&header(&accepted)), alice, "{accepted}");
        }
        // Data after complete padding is ignored: "al:b" = YWw6Yg==.
        let al_b = Some(
            "basicauth:1a9ad92ef3beeb8863aa32c29b3832765523af13f44d2342bc4df60df038c1ef".to_owned(),
        );
        assert_eq!(id(&header("Basic YWw6Yg==QUFB")), al_b);
    }

    #[test]
    fn anonymous_cases() {
        assert_eq!(basic_auth_userid(None, REF_SECRET), None);
        for rejected in [
            "",
            "Basic",
            "Basic ",
            "Basic\tYWxpY2U6c2VjcmV0",
            "Bearer YWxpY2U6c2VjcmV0",
            "Basic !!!!",
            "Basic YWw6Yg",            // missing padding
            "Basic YWxpY2U6c2VjcmV0Q", // one stray character
            "Basic YWxpY2VzZWNyZXQ=",  // "alicesecret": no colon
            "Basic OnNlY3JldA==",      // ":secret": empty user name
            "Basic -_86cHc-Pw==",      // URL-safe alphabet
        ] {
            assert_eq!(id(&header(rejected)), None, "{rejected:?}");
        }
        // Non-ASCII in the header: Python refuses it (we stay anonymous).
        let latin = HeaderValue::from_bytes(b"Basic YWxp\xe9Y2U6c2VjcmV0").expect("header");
        assert_eq!(id(&latin), None);
    }

    #[test]
    fn hmac_known_answer() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_sha256_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // Empty key is accepted (Kinto's default secret).
        assert_eq!(hmac_sha256_hex("", "").len(), 64);
    }

    #[test]
    fn principals_of_requests() {
        assert_eq!(principals(None, &[]), vec!["system.Everyone"]);
        assert_eq!(
            principals(Some("basicauth:abc"), &["/buckets/b/groups/g".to_owned()]),
            vec![
                "basicauth:abc",
                "system.Authenticated",
                "/buckets/b/groups/g",
                "system.Everyone"
            ]
        );
    }
}
