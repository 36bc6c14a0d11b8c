//! Service-wide answers an operator configures: `Backoff` (ask clients to
//! slow down), end of service (`eos`: a `soft-eol` alert before the date, `410`
//! after it), and the CORS origin.

use axum::http::{HeaderMap, HeaderValue};
use serde_json::json;

use crate::errors::ApiError;
use crate::settings::Settings;

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Today's date as `YYYY-MM-DD` (UTC).
pub fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    format!("{y:04}-{m:02}-{d:02}")
}

/// Where the service stands with respect to its end-of-service date.
#[derive(Debug)]
pub enum EndOfService {
    Running,
    /// Before the date: every answer carries this `Alert`.
    Soon(String),
    /// After it: every request is refused.
    Ended(ApiError),
}

/// The `410` body's message after the end of service (Kinto's, fixed: the
/// configured `eos_message` goes in the `Alert` header only).
pub const ENDED_MESSAGE: &str =
    "The service you are trying to connect no longer exists at this location.";

/// Where the `Alert` points when `eos_url` is not set (Kinto: the
/// `project_docs` URL).
const DOCS_URL: &str = "https://kinto.readthedocs.io/";

/// Kinto's rule: past the `eos` date (exclusive), hard end; before, soft.
/// The `Alert` carries `eos_message` (`null` when unset) and `eos_url` (the
/// project docs when unset), as Kinto's.
pub fn end_of_service(settings: &Settings, today: &str) -> EndOfService {
    let Some(eos) = &settings.eos else {
        return EndOfService::Running;
    };
    let ended = today > eos.as_str();
    let alert = json!({
        "code": if ended { "hard-eol" } else { "soft-eol" },
        "message": settings.eos_message,
        "url": settings.eos_url.as_deref().unwrap_or(DOCS_URL),
    })
    .to_string();
    if ended {
        EndOfService::Ended(ApiError::service_ended(ENDED_MESSAGE, alert))
    } else {
        EndOfService::Soon(alert)
    }
}

/// Adds `Backoff` (for the configured share of answers) and, before the end
/// of service, its `Alert`.
pub fn decorate(settings: &Settings, eos_alert: Option<&str>, headers: &mut HeaderMap) {
    if let Some(backoff) = settings.backoff {
        let send = match settings.backoff_percentage {
            Some(p) => rand::random::<u64>() % 100 < p,
            None => true,
        };
        if send {
            headers.insert("backoff", HeaderValue::from(backoff));
        }
    }
    if let Some(alert) = eos_alert {
        if let Ok(v) = HeaderValue::from_str(alert) {
            headers.insert("alert", v);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(20_418), (2025, 11, 26));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(today().len(), 10);
    }

    #[test]
    fn end_of_service_before_and_after() {
        let mut s = Settings::default();
        assert!(matches!(
            end_of_service(&s, "2026-01-01"),
            EndOfService::Running
        ));
        s.eos = Some("2026-06-01".into());
        let alert = |a: &str| serde_json::from_str::<serde_json::Value>(a).unwrap();
        match end_of_service(&s, "2026-06-01") {
            EndOfService::Soon(a) => assert_eq!(
                alert(&a),
                json!({"code": "soft-eol", "message": null, "url": "https://kinto.readthedocs.io/"})
            ),
            other => panic!("{other:?}"),
        }
        s.eos_url = Some("https://example.com/eol".into());
        s.eos_message = Some("Moved".into());
        match end_of_service(&s, "2026-06-02") {
            EndOfService::Ended(e) => {
                assert_eq!(e.status().as_u16(), 410);
                assert_eq!(e.errno(), 202);
                assert_eq!(
                    e.body(),
                    json!({"code": 410, "errno": 202, "error": "Gone", "message": ENDED_MESSAGE})
                );
                let sent: Vec<_> = e
                    .headers()
                    .into_iter()
                    .filter(|(k, _)| k == "alert")
                    .collect();
                assert_eq!(
                    alert(sent[0].1.to_str().unwrap()),
                    json!({"code": "hard-eol", "message": "Moved", "url": "https://example.com/eol"})
                );
            }
            other => panic!("{other:?}"),
        }
    }
}
