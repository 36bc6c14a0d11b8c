//! Prometheus metrics (`kinto.plugins.prometheus`) at `GET /__metrics__`:
//! request counts and latencies by route template (Kinto's service names:
//! `bucket-object`, `record-plural`, `account-object`, `unknown`…), never
//! by raw URL, so the number of series stays bounded.
//!
//! Metrics (prefix `prometheus_prefix`, default the project name + `_`):
//! * `<p>request_summary_total{method,endpoint,status}`: counter;
//! * `<p>request_duration_seconds{method,endpoint}`: histogram, Kinto's
//!   default buckets (0.01 0.05 0.1 0.5 1 3 6 +Inf).
//!
//! Kinto also labels requests with ids from the URL (`bucket_id`…) and
//! counts users; Cairn does not (unbounded label values).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Duration;

use axum::http::{Method, StatusCode};
use serde_json::{json, Value};

use crate::errors::ApiError;
use crate::request::Ctx;
use crate::response::Reply;
use crate::routes::{resolve, Resolved, Route};
use crate::settings::Settings;
use crate::state::AppState;

/// Upper bounds of the latency histogram, in seconds (Kinto's default).
const BUCKETS: [f64; 7] = [0.01, 0.05, 0.1, 0.5, 1.0, 3.0, 6.0];

/// Counters since the process started. A std `Mutex`: held for a map
/// update or a rendering, never across an `.await`.
#[derive(Debug, Default)]
pub struct Registry {
    inner: Mutex<Series>,
}

#[derive(Debug, Default)]
struct Series {
    /// (method, endpoint, status) → count.
    requests: BTreeMap<(String, &'static str, u16), u64>,
    /// (method, endpoint) → histogram.
    durations: BTreeMap<(String, &'static str), Histogram>,
}

#[derive(Debug, Default, Clone)]
struct Histogram {
    /// Observations at or below each bound of [`BUCKETS`] (not cumulative).
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// The route template name of a request path (Kinto's service names).
pub fn endpoint_of(path: &str) -> &'static str {
    match resolve(path) {
        Resolved::Route(route) => match route {
            Route::Root => "hello",
            Route::Heartbeat => "heartbeat",
            Route::LbHeartbeat => "lbheartbeat",
            Route::Version => "version",
            Route::Api => "api",
            Route::Contribute => "contribute",
            Route::Batch => "batch",
            Route::Resource(rp) => {
                let object = rp.id.is_some();
                match (rp.resource.name(), object) {
                    ("bucket", true) => "bucket-object",
                    ("bucket", false) => "bucket-plural",
                    ("collection", true) => "collection-object",
                    ("collection", false) => "collection-plural",
                    ("group", true) => "group-object",
                    ("group", false) => "group-plural",
                    ("record", true) => "record-object",
                    ("record", false) => "record-plural",
                    _ => "unknown",
                }
            }
            Route::Plugin(p) => p.endpoint(),
        },
        _ => "unknown",
    }
}

impl Registry {
    pub fn observe(&self, method: &Method, path: &str, status: StatusCode, took: Duration) {
        let endpoint = endpoint_of(path);
        let secs = took.as_secs_f64();
        let mut s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *s.requests
            .entry((method.to_string(), endpoint, status.as_u16()))
            .or_default() += 1;
        let h = s
            .durations
            .entry((method.to_string(), endpoint))
            .or_default();
        if let Some(i) = BUCKETS.iter().position(|b| secs <= *b) {
            h.buckets[i] += 1;
        }
        h.count += 1;
        h.sum += secs;
    }

    /// The text exposition format.
    pub fn render(&self, prefix: &str) -> String {
        let s = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP {prefix}request_summary_total Number of requests"
        );
        let _ = writeln!(out, "# TYPE {prefix}request_summary_total counter");
        for ((method, endpoint, status), n) in &s.requests {
            let _ = writeln!(
                out,
                "{prefix}request_summary_total{{method=\"{method}\",endpoint=\"{endpoint}\",status=\"{status}\"}} {n}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP {prefix}request_duration_seconds Request duration"
        );
        let _ = writeln!(out, "# TYPE {prefix}request_duration_seconds histogram");
        for ((method, endpoint), h) in &s.durations {
            let labels = format!("method=\"{method}\",endpoint=\"{endpoint}\"");
            let mut cumulative = 0;
            for (bound, n) in BUCKETS.iter().zip(h.buckets) {
                cumulative += n;
                let _ = writeln!(
                    out,
                    "{prefix}request_duration_seconds_bucket{{{labels},le=\"{bound:?}\"}} {cumulative}"
                );
            }
            let _ = writeln!(
                out,
                "{prefix}request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "{prefix}request_duration_seconds_sum{{{labels}}} {}",
                h.sum
            );
            let _ = writeln!(
                out,
                "{prefix}request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

/// Kinto's prefix rule: `prometheus_prefix` or the project name, with `-`,
/// `.`, ` ` and `_` removed, lower-cased, plus `_`.
pub fn prefix(s: &Settings) -> String {
    let base = s.prometheus_prefix.as_deref().unwrap_or(&s.project_name);
    let cleaned: String = base
        .chars()
        .filter(|c| !matches!(c, '-' | '.' | ' ' | '_'))
        .flat_map(char::to_lowercase)
        .collect();
    format!("{cleaned}_")
}

pub fn capability(s: &Settings) -> Value {
    json!({
        "description": "Prometheus metrics.",
        "url": "https://github.com/Kinto/kinto/",
        "prefix": prefix(s),
        "disabled_metrics": [],
    })
}

/// `GET /__metrics__` (public).
pub fn handle(state: &AppState, ctx: &Ctx) -> Result<Reply, ApiError> {
    if ctx.method != Method::GET && ctx.method != Method::HEAD {
        return Err(ApiError::method_not_allowed("GET, HEAD"));
    }
    let text = state.plugins.metrics.render(&prefix(&state.settings));
    Ok(Reply::raw(
        StatusCode::OK,
        "text/plain; version=1.0.0; charset=utf-8",
        text.into_bytes(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_route_templates() {
        assert_eq!(endpoint_of("/v1/"), "hello");
        assert_eq!(endpoint_of("/v1/buckets/a"), "bucket-object");
        assert_eq!(
            endpoint_of("/v1/buckets/b/collections/c/records"),
            "record-plural"
        );
        assert_eq!(
            endpoint_of("/v1/buckets/b/collections/c/records/r1"),
            "record-object"
        );
        assert_eq!(endpoint_of("/v1/accounts/bob"), "account-object");
        assert_eq!(endpoint_of("/v1/buckets/b/history"), "history-plural");
        assert_eq!(endpoint_of("/v1/nothing/here"), "unknown");
    }

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let r = Registry::default();
        r.observe(
            &Method::GET,
            "/v1/buckets/a",
            StatusCode::OK,
            Duration::from_millis(5),
        );
        r.observe(
            &Method::GET,
            "/v1/buckets/b",
            StatusCode::OK,
            Duration::from_millis(200),
        );
        r.observe(
            &Method::GET,
            "/v1/buckets/c",
            StatusCode::NOT_FOUND,
            Duration::from_millis(1),
        );
        let text = r.render("kinto_");
        assert!(text.contains("kinto_request_summary_total{method=\"GET\",endpoint=\"bucket-object\",status=\"200\"} 2"), "{text}");
        assert!(text.contains("kinto_request_summary_total{method=\"GET\",endpoint=\"bucket-object\",status=\"404\"} 1"), "{text}");
        assert!(text.contains("kinto_request_duration_seconds_bucket{method=\"GET\",endpoint=\"bucket-object\",le=\"0.01\"} 2"), "{text}");
        assert!(text.contains("kinto_request_duration_seconds_bucket{method=\"GET\",endpoint=\"bucket-object\",le=\"0.5\"} 3"), "{text}");
        assert!(
            text.contains(
                "kinto_request_duration_seconds_count{method=\"GET\",endpoint=\"bucket-object\"} 3"
            ),
            "{text}"
        );
        assert!(!text.contains("/buckets/a"));
    }

    #[test]
    fn prefix_rule() {
        let mut s = Settings::default();
        assert_eq!(prefix(&s), "kinto_");
        s.prometheus_prefix = Some("My-App.v_2".into());
        assert_eq!(prefix(&s), "myappv2_");
    }
}
