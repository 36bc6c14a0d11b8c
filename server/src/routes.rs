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
    Api,
    Contribute,
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
    if let Some(p) = crate::plugins::resolve(rest) {
        return Resolved::Route(Route::Plugin(p));
    }
    match match_table(rest) {
        Some(r) => Resolved::Route(r),
        None => Resolved::NotFound,
    }
}

/// What a row of the route table serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteKind {
    Root,
    Heartbeat,
    LbHeartbeat,
    Version,
    Api,
    Contribute,
    Batch,
    /// A resource endpoint; `true` for the object endpoint, `false` for the
    /// plural one.
    Resource(Resource, bool),
}

/// One row of the route table: the URL template below `/v1`, what serves
/// it, its methods (the `Allow` header) and a summary for `/__api__`.
#[derive(Debug, Clone, Copy)]
pub struct RouteSpec {
    pub template: &'static str,
    pub kind: RouteKind,
    pub methods: &'static str,
    pub summary: &'static str,
}

const fn spec(
    template: &'static str,
    kind: RouteKind,
    methods: &'static str,
    summary: &'static str,
) -> RouteSpec {
    RouteSpec {
        template,
        kind,
        methods,
        summary,
    }
}

/// The core route table. Requests are resolved against it and `/__api__`
/// is generated from it, so the two cannot disagree.
pub const ROUTES: &[RouteSpec] = &[
    spec(
        "/",
        RouteKind::Root,
        "GET, HEAD",
        "Server information and the current user",
    ),
    spec(
        "/__heartbeat__",
        RouteKind::Heartbeat,
        "GET, HEAD",
        "Health of the backends",
    ),
    spec(
        "/__lbheartbeat__",
        RouteKind::LbHeartbeat,
        "GET, HEAD",
        "Load balancer liveness",
    ),
    spec(
        "/__version__",
        RouteKind::Version,
        "GET, HEAD",
        "Version information",
    ),
    spec(
        "/__api__",
        RouteKind::Api,
        "GET, HEAD",
        "OpenAPI 2.0 description of this API",
    ),
    spec(
        "/contribute.json",
        RouteKind::Contribute,
        "GET, HEAD",
        "Project metadata",
    ),
    spec(
        "/batch",
        RouteKind::Batch,
        "POST",
        "Several requests in one",
    ),
    spec(
        "/buckets",
        RouteKind::Resource(Resource::Bucket, false),
        PLURAL_METHODS,
        "Buckets",
    ),
    spec(
        "/buckets/{bid}",
        RouteKind::Resource(Resource::Bucket, true),
        OBJECT_METHODS,
        "A bucket",
    ),
    spec(
        "/buckets/{bid}/collections",
        RouteKind::Resource(Resource::Collection, false),
        PLURAL_METHODS,
        "Collections of a bucket",
    ),
    spec(
        "/buckets/{bid}/collections/{cid}",
        RouteKind::Resource(Resource::Collection, true),
        OBJECT_METHODS,
        "A collection",
    ),
    spec(
        "/buckets/{bid}/groups",
        RouteKind::Resource(Resource::Group, false),
        PLURAL_METHODS,
        "Groups of a bucket",
    ),
    spec(
        "/buckets/{bid}/groups/{gid}",
        RouteKind::Resource(Resource::Group, true),
        OBJECT_METHODS,
        "A group",
    ),
    spec(
        "/buckets/{bid}/collections/{cid}/records",
        RouteKind::Resource(Resource::Record, false),
        PLURAL_METHODS,
        "Records of a collection",
    ),
    spec(
        "/buckets/{bid}/collections/{cid}/records/{rid}",
        RouteKind::Resource(Resource::Record, true),
        OBJECT_METHODS,
        "A record",
    ),
];

/// The templates of [`ROUTES`], split into segments once.
fn compiled() -> &'static [Vec<&'static str>] {
    static SEGMENTS: std::sync::OnceLock<Vec<Vec<&'static str>>> = std::sync::OnceLock::new();
    SEGMENTS.get_or_init(|| {
        ROUTES
            .iter()
            .map(|row| {
                row.template
                    .split('/')
                    .skip(1)
                    .filter(|s| !s.is_empty())
                    .collect()
            })
            .collect()
    })
}

/// Matches a path below `/v1` against the table, capturing `{…}` segments.
fn match_table(rest: &str) -> Option<Route> {
    let segs: Vec<&str> = if rest == "/" {
        Vec::new()
    } else {
        rest.split('/').skip(1).collect()
    };
    'rows: for (row, tpl) in ROUTES.iter().zip(compiled()) {
        if tpl.len() != segs.len() {
            continue;
        }
        let mut captures: Vec<(&str, &str)> = Vec::new();
        for (t, s) in tpl.iter().zip(&segs) {
            if t.starts_with('{') {
                if s.is_empty() {
                    continue 'rows;
                }
                captures.push((t, s));
            } else if t != s {
                continue 'rows;
            }
        }
        let get = |name: &str| {
            captures
                .iter()
                .find(|(t, _)| *t == name)
                .map(|(_, v)| decode_segment(v))
        };
        return Some(match row.kind {
            RouteKind::Root => Route::Root,
            RouteKind::Heartbeat => Route::Heartbeat,
            RouteKind::LbHeartbeat => Route::LbHeartbeat,
            RouteKind::Version => Route::Version,
            RouteKind::Api => Route::Api,
            RouteKind::Contribute => Route::Contribute,
            RouteKind::Batch => Route::Batch,
            RouteKind::Resource(resource, object) => {
                let id = if object {
                    get(match resource {
                        Resource::Bucket => "{bid}",
                        Resource::Collection => "{cid}",
                        Resource::Group => "{gid}",
                        Resource::Record => "{rid}",
                        Resource::Account => "{id}",
                    })
                } else {
                    None
                };
                let (bucket, collection) = match resource {
                    Resource::Bucket | Resource::Account => (None, None),
                    Resource::Collection | Resource::Group => (get("{bid}"), None),
                    Resource::Record => (get("{bid}"), get("{cid}")),
                };
                Route::Resource(ResourcePath {
                    resource,
                    parents: Parents { bucket, collection },
                    id,
                })
            }
        });
    }
    None
}

/// A path segment with its `%XX` escapes decoded, as the reference's WSGI
/// server hands ids to Kinto (`/buckets/b%39` is bucket `b9`). Escapes that
/// do not decode to UTF-8 leave the segment as sent (an invalid id then).
fn decode_segment(seg: &str) -> String {
    if !seg.contains('%') {
        return seg.to_owned();
    }
    let bytes = seg.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap_or_else(|_| seg.to_owned())
}

fn is_other_version(path: &str) -> bool {
    let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
    first.len() > 1 && first.starts_with('v') && first[1..].bytes().all(|b| b.is_ascii_digit())
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
            // Ids are percent-decoded.
            (
                "/v1/buckets/b%39/collections/c%2D1/records/%72",
                res(Resource::Record, Some("b9"), Some("c-1"), Some("r")),
            ),
            (
                "/v1/buckets/a%00b",
                res(Resource::Bucket, None, None, Some("a\0b")),
            ),
            (
                "/v1/buckets/%zz%4",
                res(Resource::Bucket, None, None, Some("%zz%4")),
            ),
            (
                "/v1/buckets/%ff",
                res(Resource::Bucket, None, None, Some("%ff")),
            ),
        ];
        for (path, want) in cases {
            assert_eq!(resolve(path), want, "{path}");
        }
    }
}
