//! Object ids: which ids clients may use, and the ids the server makes up
//! for `POST` without an id.
//!
//! Every object type accepts `^[a-zA-Z0-9][a-zA-Z0-9_-]*$`, with no length
//! limit (as the reference). Generated ids follow Kinto's generators:
//! records get a lowercase UUID v4; buckets, collections and groups an
//! 8-character name (one alphanumeric, then seven of `[a-zA-Z0-9_-]`).

use projections::Resource;
use rand::Rng;

/// Does `id` match `^[a-zA-Z0-9][a-zA-Z0-9_-]*$`?
pub fn is_valid_id(id: &str) -> bool {
    let mut bytes = id.bytes();
    match bytes.next() {
        Some(first) if first.is_ascii_alphanumeric() => {}
        _ => return false,
    }
    bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

const ALPHANUMERIC: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const NAME_CHARS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-";

/// A new id for an object of `resource` created by `POST` without `data.id`.
/// Records: a lowercase UUID v4 (`d693f9fd-73dd-4354-ae82-1a59d1702541`);
/// others: 8 characters, e.g. `1lkqgtu_`. Callers must still check the id
/// is free (the name space of 8-character names is large, not infinite).
pub fn generate_id(resource: Resource) -> String {
    match resource {
        Resource::Record | Resource::Account => uuid::Uuid::new_v4().to_string(),
        Resource::Bucket | Resource::Collection | Resource::Group => {
            let mut rng = rand::thread_rng();
            let mut id = String::with_capacity(8);
            id.push(char::from(
                ALPHANUMERIC[rng.gen_range(0..ALPHANUMERIC.len())],
            ));
            for _ in 0..7 {
                id.push(char::from(NAME_CHARS[rng.gen_range(0..NAME_CHARS.len())]));
            }
            id
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_ids_as_the_reference() {
        for ok in [
            "ab_",
            "a-b",
            "A1",
            "1",
            "abc",
            "0-_",
            "d693f9fd-73dd-4354-ae82-1a59d1702541",
        ] {
            assert!(is_valid_id(ok), "{ok}");
        }
        assert!(is_valid_id(&"a".repeat(300)));
        for bad in [
            "", "a.b", "-ab", "_ab", "a b", "é", "aé", "a/b", "a\n", "a:b", "*",
        ] {
            assert!(!is_valid_id(bad), "{bad:?}");
        }
    }

    #[test]
    fn record_ids_are_lowercase_uuid_v4() {
        for _ in 0..50 {
            let id = generate_id(Resource::Record);
            let parsed = uuid::Uuid::parse_str(&id).expect("uuid");
            assert_eq!(parsed.get_version_num(), 4);
            assert_eq!(id, id.to_lowercase());
            assert_eq!(id.len(), 36);
            assert!(is_valid_id(&id));
        }
    }

    #[test]
    fn names_have_kintos_shape() {
        for resource in [Resource::Bucket, Resource::Collection, Resource::Group] {
            for _ in 0..200 {
                let id = generate_id(resource);
                assert_eq!(id.len(), 8, "{id}");
                assert!(id.as_bytes()[0].is_ascii_alphanumeric(), "{id}");
                assert!(is_valid_id(&id), "{id}");
            }
        }
        let a = generate_id(Resource::Bucket);
        let b = generate_id(Resource::Bucket);
        assert_ne!(a, b);
    }
}
