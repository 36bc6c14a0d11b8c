//! The URL table: which paths exist and what they address.
//!
//! Kinto's object URLs nest (`/buckets/{bid}/collections/{cid}/records/{rid}`)
//! and every level answers the same methods, so the path is parsed into a
//! [`Route`] once and one generic set of handlers serves all four resources.

use projections::Resource;

/// The API version prefix every route lives under.
pub const PREFIX: &str = "/v1";

/// Parent ids of an object URL: `bucket` for collections, groups and
/// records, `collection` too for records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parents {
    pub bucket: Option<String>,
    pub collection: Option<String>,
}

/// A resource URL, as written by the client (`default` not yet resolved).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourcePath {
    pub resource: Resource,
    pub parents: Parents,
    /// `None` for the plural endpoint.
    pub id: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Root,
    Heartbeat,
    LbHeartbeat,
    Version,
    Batch,
    Resource(ResourcePath),
    /// Served by a plugin (accounts, history, permissions, flush…).
    Plugin(crate::plugins::PluginRoute),
}

/// Methods of an object endpoint, in the reference's `Allow` order.
pub const OBJECT_METHODS: &str = "GET, HEAD, PUT, PATCH, DELETE, OPTIONS";
/// Methods of a plural endpoint, in the reference's `Allow` order.
pub const PLURAL_METHODS: &str = "HEAD, GET, POST, DELETE, OPTIONS";

/// What to do with a request path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolved {
    Route(Route),
    /// 307 to this location (unversioned path, trailing slash).
    Redirect(String),
    /// Under another version prefix (`/v2/…`).
    OtherVersion,
    NotFound,
}

/// Maps a request path (without query) to what serves it.
pub fn resolve(path: &str) -> Resolved {
    if path == PREFIX {
        return Resolved::Redirect(format!("{PREFIX}/"));
    }
    let Some(rest) = path.strip_prefix(PREFIX) else {
        return if is_other_version(path) {
            Resolved::OtherVersion
        } else {
            Resolved::Redirect(format!("{PREFIX}{path}"))
        };
    };
    if !rest.starts_with('/') {
        // `/v1x…` is not under the prefix.
        return if is_other_version(path) {
            Resolved::OtherVersion
        } else {
            Resolved::NotFound
        };
    }
    if rest == "/" {
        return Resolved::Route(Route::Root);
    }
    if let Some(trimmed) = rest.strip_suffix('/') {
        return Resolved::Redirect(format!("{PREFIX}{trimmed}"));
    }
    match rest {
        "/__heartbeat__" => return Resolved::Route(Route::Heartbeat),
        "/__lbheartbeat__" => return Resolved::Route(Route::LbHeartbeat),
        "/__version__" => return Resolved::Route(Route::Version),
        "/batch" => return Resolved::Route(Route::Batch),
        _ => {}
    }
    if let Some(p) = crate::plugins::resolve(rest) {
        return Resolved::Route(Route::Plugin(p));
    }
    let segs: Vec<&str> = rest[1..].split('/').collect();
    match parse_resource(&segs) {
        Some(rp) => Resolved::Route(Route::Resource(rp)),
        None => Resolved::NotFound,
    }
}

fn is_other_version(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    first.len() > 1 && first.starts_with('v') && first[1..].bytes().all(|b| b.is_ascii_digit())
}

fn parse_resource(segs: &[&str]) -> Option<ResourcePath> {
    if segs.iter().any(|s| s.is_empty()) {
        return None;
    }
    let none = Parents {
        bucket: None,
        collection: None,
    };
    let (resource, parents, id) = match segs {
        ["buckets"] => (Resource::Bucket, none, None),
        ["buckets", b] => (Resource::Bucket, none, Some(*b)),
        ["buckets", b, "collections"] => (Resource::Collection, bucket(b), None),
        ["buckets", b, "collections", c] => (Resource::Collection, bucket(b), Some(*c)),
        ["buckets", b, "groups"] => (Resource::Group, bucket(b), None),
        ["buckets", b, "groups", g] => (Resource::Group, bucket(b), Some(*g)),
        ["buckets", b, "collections", c, "records"] => (Resource::Record, coll(b, c), None),
        ["buckets", b, "collections", c, "records", r] => (Resource::Record, coll(b, c), Some(*r)),
        _ => return None,
    };
    Some(ResourcePath {
        resource,
        parents,
        id: id.map(str::to_owned),
    })
}

fn bucket(b: &str) -> Parents {
    Parents {
        bucket: Some(b.to_owned()),
        collection: None,
    }
}

fn coll(b: &str, c: &str) -> Parents {
    Parents {
        bucket: Some(b.to_owned()),
        collection: Some(c.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn res(resource: Resource, b: Option<&str>, c: Option<&str>, id: Option<&str>) -> Resolved {
        Resolved::Route(Route::Resource(ResourcePath {
            resource,
            parents: Parents {
                bucket: b.map(Into::into),
                collection: c.map(Into::into),
            },
            id: id.map(Into::into),
        }))
    }

    #[test]
    fn resolves_the_url_table() {
        let cases = [
            ("/v1/", Resolved::Route(Route::Root)),
            ("/v1", Resolved::Redirect("/v1/".into())),
            ("/buckets", Resolved::Redirect("/v1/buckets".into())),
            ("/v2/buckets", Resolved::OtherVersion),
            ("/v1/buckets/", Resolved::Redirect("/v1/buckets".into())),
            ("/v1/unknown", Resolved::NotFound),
            ("/v1/__heartbeat__", Resolved::Route(Route::Heartbeat)),
            ("/v1/buckets", res(Resource::Bucket, None, None, None)),
            (
                "/v1/buckets/b",
                res(Resource::Bucket, None, None, Some("b")),
            ),
            (
                "/v1/buckets/b/groups/g",
                res(Resource::Group, Some("b"), None, Some("g")),
            ),
            (
                "/v1/buckets/b/collections",
                res(Resource::Collection, Some("b"), None, None),
            ),
            (
                "/v1/buckets/b/collections/c/records/r",
                res(Resource::Record, Some("b"), Some("c"), Some("r")),
            ),
            (
                "/v1/buckets/b/collections/c/records/r/x",
                Resolved::NotFound,
            ),
            ("/v1/buckets//collections", Resolved::NotFound),
        ];
        for (path, want) in cases {
            assert_eq!(resolve(path), want, "{path}");
        }
    }
}
