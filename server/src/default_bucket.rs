//! The id of a user's personal bucket (`/buckets/default`, plugin
//! `default_bucket`).
//!
//! Kinto derives it from the prefixed user id and the
//! `default_bucket_hmac_secret` setting (not the user-id secret): the first
//! 32 hex digits of HMAC-SHA256, written as a UUID without touching the
//! version or variant bits. The same user must find the same bucket on
//! Kinto and on Cairn configured with the same secret, so the tests pin
//! answers observed on the reference.

use crate::auth::hmac_sha256_hex;

/// The literal bucket id that means "the caller's personal bucket" in URLs.
pub const DEFAULT_BUCKET: &str = "default";

/// Kinto's personal bucket id: hex HMAC-SHA256(key = `default_bucket_hmac_secret`,
/// message = `user_id`), first 32 hex digits formatted 8-4-4-4-12.
/// `user_id` is the prefixed id (`basicauth:…`).
pub fn default_bucket_id(default_bucket_hmac_secret: &str, user_id: &str) -> String {
    let digest = hmac_sha256_hex(default_bucket_hmac_secret, user_id);
    // The digest is 64 ASCII hex digits, so these slices are in bounds.
    format!(
        "{}-{}-{}-{}-{}",
        &digest[0..8],
        &digest[8..12],
        &digest[12..16],
        &digest[16..20],
        &digest[20..32]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_vectors() {
        // api-around.md 2: alice:wonderland with userid_hmac_secret s3cr3t.
        let alice = "basicauth:c04127fd1715748ea49a5f9f7f3e50913287c0830d8aa4fb5a1e10f57914bdb5";
        assert_eq!(
            default_bucket_id("bucketsalt", alice),
            "1e3b3605-03da-1c18-d13e-c9f48b46049a"
        );
        assert_eq!(
            default_bucket_id("", alice),
            "0ed4d4fa-5398-3f1e-f580-95c30a16cc21"
        );
    }

    /// Observed on Kinto 26.5.0 from `shared/reference/start-kinto`
    /// (`user.bucket` of `GET /v1/`), whose secrets are
    /// "kinto-reference-userid-secret" / "kinto-reference-default-bucket-secret".
    #[test]
    fn reference_known_answers() {
        let secret = "kinto-reference-default-bucket-secret";
        for (user_id, bucket) in [
            // alice:secret
            (
                "basicauth:4484add49eed301d384360d7b2c128bfd90ca4ec91ab770965eeb46e91286037",
                "6ed387fa-e759-23e4-4450-06e640606cc0",
            ),
            // alice:wonderland
            (
                "basicauth:47d60e135a44e8258bf7be970fb307908655573b90d6b7ee8cef27da45986117",
                "9eb21b0a-de59-1511-4818-c9784e53b9f0",
            ),
            // ali:ce:pw
            (
                "basicauth:b3d9cb59675bb82204a5041d4efeb08e12de35ada3810ffca6d78b6f85b5fd1b",
                "534b8556-57db-3cd0-2042-23d3d40d2289",
            ),
            // alice: (empty password)
            (
                "basicauth:084d1bab860e59b0a4c7ca0d5f120b09408399f6ef2b66cba8a984b65252b20b",
                "84ec89b8-c8dd-9608-834f-82224bb18b84",
            ),
        ] {
            assert_eq!(default_bucket_id(secret, user_id), bucket, "{user_id}");
        }
    }

    #[test]
    fn end_to_end_from_credentials() {
        let header = http::HeaderValue::from_static("Basic YWxpY2U6c2VjcmV0"); // alice:secret
        let user = crate::auth::basic_auth_userid(Some(&header), "kinto-reference-userid-secret");
        let bucket = user.map(|u| default_bucket_id("kinto-reference-default-bucket-secret", &u));
        assert_eq!(
            bucket.as_deref(),
            Some("6ed387fa-e759-23e4-4450-06e640606cc0")
        );
    }

    #[test]
    fn shape_is_a_valid_bucket_id() {
        let id = default_bucket_id("s", "basicauth:x");
        assert_eq!(id.len(), 36);
        assert!(crate::ids::is_valid_id(&id));
    }
}
