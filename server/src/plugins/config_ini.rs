//! Reading an existing Kinto ini file (`cairn serve --ini kinto.ini`), so an
//! operator can switch without rewriting the configuration.
//!
//! PasteDeploy's format, as Kinto reads it: `[app:main]` holds the settings
//! (`kinto.*`, unprefixed names, `multiauth.*`), `[server:main]` the
//! `host` and `port`; other sections (loggers, handlers…) are not settings.
//! A line starting with whitespace continues the previous value (Kinto's
//! lists are often written one item per line); `#` and `;` start comment
//! lines. `%(here)s` is replaced by the file's directory. The values are
//! returned as text: the settings loader JSON-decodes them like Kinto.

use std::path::Path;

use crate::settings::SettingsError;

/// The settings of an ini file as `(name as written, value)`, `[server:main]`
/// `host`/`port` included; the same setting given with and without the
/// `kinto.` prefix and different values is an error, as in Kinto.
pub fn read_ini(path: &Path) -> Result<Vec<(String, toml::Value)>, SettingsError> {
    let text = std::fs::read_to_string(path).map_err(|source| SettingsError::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    let here = path
        .parent()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let entries = parse_ini(&text).map_err(|message| SettingsError::ParseConfig {
        path: path.to_owned(),
        message,
    })?;
    let mut out: Vec<(String, toml::Value)> = Vec::new();
    for (section, key, value) in entries {
        let value = value.replace("%(here)s", &here);
        let key = match section.as_str() {
            "app:main" => key,
            "server:main" if key == "host" || key == "port" => key,
            _ => continue,
        };
        let name = key.strip_prefix("kinto.").unwrap_or(&key).to_owned();
        if let Some((other, other_value)) = out
            .iter()
            .find(|(k, _)| k.strip_prefix("kinto.").unwrap_or(k) == name)
        {
            if other_value.as_str() != Some(value.as_str()) {
                let (first, second) = if key.starts_with("kinto.") {
                    (other.clone(), key)
                } else {
                    (key, other.clone())
                };
                return Err(SettingsError::Conflict { first, second });
            }
            continue;
        }
        out.push((key, toml::Value::String(value)));
    }
    Ok(out)
}

/// `(section, key, value)` in file order. Keys keep their case (Kinto's
/// setting names are lower case anyway); values are trimmed, continuation
/// lines joined with a newline.
pub fn parse_ini(text: &str) -> Result<Vec<(String, String, String)>, String> {
    let mut out: Vec<(String, String, String)> = Vec::new();
    let mut section: Option<String> = None;
    for (n, line) in text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if line.starts_with(char::is_whitespace) {
            // A continuation of the previous value.
            match out.last_mut() {
                Some(last) => {
                    if !last.2.is_empty() {
                        last.2.push('\n');
                    }
                    last.2.push_str(trimmed);
                    continue;
                }
                None => return Err(format!("line {}: continuation without a key", n + 1)),
            }
        }
        if let Some(name) = trimmed
            .strip_prefix('[')
            .and_then(|rest| rest.strip_suffix(']'))
        {
            section = Some(name.trim().to_owned());
            continue;
        }
        let Some(sep) = trimmed.find(['=', ':']) else {
            return Err(format!("line {}: expected `key = value`", n + 1));
        };
        let Some(section) = &section else {
            return Err(format!("line {}: a key outside of any section", n + 1));
        };
        let key = trimmed[..sep].trim().to_owned();
        let value = trimmed[sep + 1..].trim().to_owned();
        out.push((section.clone(), key, value));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINTO_INI: &str = "\
# A Kinto ini file
[server:main]
use = egg:waitress#main
host = 0.0.0.0
port = 8899

[app:main]
use = egg:kinto
kinto.storage_backend = kinto.core.storage.memory
kinto.includes = kinto.plugins.default_bucket
                 kinto.plugins.accounts
; a comment
kinto.paginate_by = 5
multiauth.policies = account basicauth
multiauth.policy.account.use = kinto.plugins.accounts.AccountsPolicy
kinto.bucket_create_principals = system.Authenticated

[loggers]
keys = root, kinto
";

    #[test]
    fn parses_sections_continuations_and_comments() {
        let entries = parse_ini(KINTO_INI).unwrap();
        let get = |s: &str, k: &str| {
            entries
                .iter()
                .find(|(sec, key, _)| sec == s && key == k)
                .map(|(_, _, v)| v.as_str())
        };
        assert_eq!(get("server:main", "port"), Some("8899"));
        assert_eq!(
            get("app:main", "kinto.includes"),
            Some("kinto.plugins.default_bucket\nkinto.plugins.accounts")
        );
        assert_eq!(get("app:main", "kinto.paginate_by"), Some("5"));
        assert_eq!(get("loggers", "keys"), Some("root, kinto"));
        assert!(parse_ini("key = 1\n").is_err());
        assert!(parse_ini("[a]\n  x\n").is_err());
    }

    #[test]
    fn loads_into_settings() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kinto.ini");
        std::fs::write(&path, KINTO_INI).unwrap();
        let src = crate::settings::SettingsSource::default();
        let s = crate::settings::Settings::load_with_ini(&src, Some(&path), &[]).unwrap();
        assert_eq!((s.host.as_str(), s.port), ("0.0.0.0", 8899));
        assert_eq!(s.paginate_by, Some(5));
        assert!(s.includes("kinto.plugins.accounts"));
        assert_eq!(
            s.policies(),
            vec![
                crate::settings::Policy::Accounts,
                crate::settings::Policy::BasicAuth
            ]
        );
        assert_eq!(s.ignored, vec!["use", "kinto.storage_backend"]);
        assert!(s.unknown.is_empty(), "{:?}", s.unknown);
    }

    #[test]
    fn prefixed_and_plain_names_in_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("kinto.ini");
        std::fs::write(
            &path,
            "[app:main]\npaginate_by = 5\nkinto.paginate_by = 6\n",
        )
        .unwrap();
        assert!(matches!(
            read_ini(&path),
            Err(SettingsError::Conflict { .. })
        ));
    }
}
