//! The server's configuration: one typed [`Settings`], loaded once at start
//! from embedded defaults, an optional config file, `KINTO_*` environment
//! variables and the command line (later sources win), with the secrets
//! kept out of `Debug` output and logs.
//!
//! Setting names and value rules are Kinto's (spec `api-around.md` 4), so
//! that a Kinto deployment's environment carries over:
//!
//! * names may carry the `kinto.` prefix or not (`kinto.paginate_by` and
//!   `paginate_by` are the same setting; giving both with different values
//!   is an error, as in Kinto);
//! * environment variables are `KINTO_` + the name upper-cased
//!   (`KINTO_BATCH_MAX_REQUESTS`); their values are JSON-decoded as Kinto
//!   does: `5` is a number, `true` a boolean, `null` nothing, anything else
//!   the raw string;
//! * principal lists are written as Kinto's `aslist`: separated by spaces,
//!   newlines (and, for Cairn, commas), or as a JSON / TOML array.
//!
//! Names given but not understood are collected in [`Settings::unknown`]
//! so the server can report them at start instead of silently ignoring a
//! typo. User-id and personal-bucket secrets that are not configured are
//! generated once and kept in the data directory
//! ([`Settings::ensure_secrets`]), so user ids survive restarts.
//!
//! # Config file format
//!
//! A TOML file of Kinto setting names, top-level keys:
//!
//! ```toml
//! # Cairn's own: where to listen and where the data lives.
//! host = "0.0.0.0"
//! port = 8888
//! data_dir = "/var/lib/cairn"
//!
//! # Kinto settings, with or without the `kinto.` prefix.
//! userid_hmac_secret = "9b7…"                 # hex, any string
//! "kinto.default_bucket_hmac_secret" = "4f1…"
//! bucket_create_principals = ["system.Authenticated"]   # or "a b c"
//! paginate_by = 100
//! readonly = false
//!
//! # A dotted key is the same as a table: this is `kinto.batch_max_requests`.
//! kinto.batch_max_requests = 50
//! ```
//!
//! Tables are flattened to dotted names (`[kinto]` + `paginate_by = 5` is
//! `kinto.paginate_by`). String values are JSON-decoded like environment
//! values, so `port = "8888"` works as `port = 8888`.
//!
//! | name | default | meaning |
//! |---|---|---|
//! | `host` | `127.0.0.1` | interface to listen on |
//! | `port` | `8888` | TCP port |
//! | `data_dir` | `./cairn-data` | log, projections and generated secrets |
//! | `userid_hmac_secret` | generated | Basic Auth user ids |
//! | `default_bucket_hmac_secret` | generated | personal bucket ids |
//! | `bucket_create_principals` | `system.Authenticated` | who may create buckets |
//! | `paginate_by` | none | default and maximum page size |
//! | `storage_max_fetch_size` | `10000` | most objects one list returns |
//! | `batch_max_requests` | `25` | sub-requests per batch |
//! | `readonly` | `false` | refuse every write |
//! | `project_name` | `kinto` | `GET /v1/` |
//! | `project_version` | Cairn's version | `GET /v1/` |
//! | `http_api_version` | `1.23` | `GET /v1/` |
//! | `includes` | `kinto.plugins.default_bucket` | plugins switched on (Kinto's names) |
//! | `multiauth.policies` | `basicauth` (`account basicauth` with accounts) | authentication policies, in order |
//! | `multiauth.policy.<name>.use` | — | a policy's implementation (`…AccountsPolicy`, `…BasicAuth…`) |
//! | `account_create_principals` | none | who may create accounts over HTTP |
//! | `account_write_principals` | none | account administrators |
//! | `account_read_principals` | none | who may list every account (with admin rights) |
//! | `account_cache_ttl_seconds` | `30` | account password verification cache |
//! | `experimental_permissions_endpoint` | `false` | `GET /v1/permissions` |
//! | `permissions_read_principals` | `system.Everyone` | who may call `/permissions` |
//! | `history.exclude_resources` | none | bucket/collection/object URIs kept out of history |
//! | `history.exclude_user_ids` | none | users whose changes are kept out of history |
//! | `prometheus_prefix` | project name | metric name prefix |
//! | `attachment.base_path` | `<data_dir>/attachments` | where attachment files go |
//! | `attachment.base_url` | the server's `/v1/attachments/` | where clients download them (capability `base_url`) |
//! | `attachment.extra.base_url` | none | overrides the capability's `base_url` |
//! | `attachment.folder` | none | `location` prefix, e.g. `{bucket_id}/{collection_id}` |
//! | `attachment.extensions` | Kinto's `default` group | allowed file extensions (`any`, groups joined by `+`) |
//! | `attachment.mimetypes` | none | `.ext:type;…` overrides of the recorded mimetype |
//! | `attachment.max_size_bytes` | none | largest upload |
//! | `attachment.gzipped` | `false` | store files gzipped (`.gz`, with `original`) |
//! | `attachment.keep_old_files` | `false` | never delete a replaced or unreferenced file |
//! | `attachment.resources.<bid>[.<cid>].keep_old_files`, `….max_size_bytes` | none | per bucket / collection overrides |
//!
//! # Kinto ini files
//!
//! `cairn serve --ini kinto.ini` reads an existing Kinto configuration:
//! `[app:main]` keys (`kinto.*`, unprefixed names, `multiauth.*`) and
//! `[server:main]` `host` / `port`. Continuation lines (indented) extend a
//! value, `#`/`;` start comments. Values are JSON-decoded as Kinto does.
//! Settings that only make sense for Kinto's Python backends
//! (`storage_backend`, `cache_url`…) are listed in [`Settings::ignored`];
//! anything else Cairn does not know lands in [`Settings::unknown`]. Both
//! are reported at start.

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

/// A secret setting. `Debug` never shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    /// An empty secret counts as "not configured".
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Everything the server is configured with. Load with [`Settings::load`],
/// then call [`Settings::ensure_secrets`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub data_dir: PathBuf,
    /// Key of the Basic Auth user ids. Empty until [`Settings::ensure_secrets`]
    /// when not configured (Cairn never serves with an empty secret, unlike
    /// Kinto's default, which makes every user id computable from the
    /// credentials alone).
    pub userid_hmac_secret: Secret,
    /// Key of the personal bucket ids (does not fall back to the user-id secret).
    pub default_bucket_hmac_secret: Secret,
    pub bucket_create_principals: Vec<String>,
    /// Default and maximum page size; `None` (or `0`) = no pagination.
    pub paginate_by: Option<u64>,
    pub storage_max_fetch_size: u64,
    pub batch_max_requests: u64,
    pub readonly: bool,
    /// `Backoff` header (seconds) sent on responses, when set.
    pub backoff: Option<u64>,
    /// Percentage of responses carrying `Backoff` (all when unset).
    pub backoff_percentage: Option<u64>,
    /// `Retry-After` (seconds) on 503 and 409 answers.
    pub retry_after_seconds: u64,
    /// End of service date (`YYYY-MM-DD`): `Alert: soft-eol` before it,
    /// `410` errno 202 with `hard-eol` after it.
    pub eos: Option<String>,
    pub eos_message: Option<String>,
    pub eos_url: Option<String>,
    /// Largest request body accepted (Cairn setting; Kinto has none).
    pub request_body_max_bytes: u64,
    /// `Access-Control-Allow-Origin` values (`*` by default).
    pub cors_origins: Vec<String>,
    pub cors_max_age_seconds: u64,
    pub project_name: String,
    pub project_version: String,
    pub http_api_version: String,
    /// Kinto plugin names switched on (`includes`), as given.
    pub includes: Vec<String>,
    /// `multiauth.policies` as configured; `None` when not configured
    /// (see [`Settings::policies`] for what is used then).
    pub multiauth_policies: Option<Vec<String>>,
    /// `multiauth.policy.<name>.use`, by policy name.
    pub multiauth_policy_use: BTreeMap<String, String>,
    /// Who may create accounts over HTTP (`account:create`).
    pub account_create_principals: Vec<String>,
    /// Account administrators: write (and read) on every account.
    pub account_write_principals: Vec<String>,
    /// Read on every account (listing all of them, with admin rights).
    pub account_read_principals: Vec<String>,
    /// Lifetime of a successful password check, in seconds (sliding).
    pub account_cache_ttl_seconds: u64,
    pub experimental_permissions_endpoint: bool,
    /// Who may call `/permissions`.
    pub permissions_read_principals: Vec<String>,
    /// `history.exclude_resources`: URIs (`/buckets/b`,
    /// `/buckets/b/collections/c`, an object URI) kept out of history.
    pub history_exclude_resources: Vec<String>,
    /// `history.exclude_user_ids`: users whose changes are kept out.
    pub history_exclude_user_ids: Vec<String>,
    /// `prometheus_prefix`: metric name prefix (default: the project name).
    pub prometheus_prefix: Option<String>,
    /// `attachment.*` settings.
    pub attachment: AttachmentSettings,
    /// Kinto settings Cairn accepts but that do not apply to it (Python
    /// backends, pools, logging): reported at start, then ignored.
    pub ignored: Vec<String>,
    /// Setting names given but not understood (config keys as written, or
    /// environment variable names), to be reported at start.
    pub unknown: Vec<String>,
}

/// The attachments plugin's settings (`attachment.*`, kinto-attachment's
/// names; see `plugins::attachments`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentSettings {
    /// Where files are stored; default `<data_dir>/attachments`.
    pub base_path: Option<PathBuf>,
    /// Base URL of downloads; default `<server>/v1/attachments/`.
    pub base_url: Option<String>,
    /// `attachment.extra.base_url`: the capability's `base_url` when set.
    pub extra_base_url: Option<String>,
    /// `attachment.folder`: pattern of the `location` prefix
    /// (`{bucket_id}`, `{collection_id}`, `{id}`).
    pub folder: Option<String>,
    /// Allowed extensions as given (`default`, `any`, `images+pdf`, `txt
    /// csv`); `None` = Kinto's `default` group.
    pub extensions: Option<Vec<String>>,
    /// `attachment.mimetypes`: `.ext:type;.ext:type` overrides.
    pub mimetypes: Option<String>,
    pub max_size_bytes: Option<u64>,
    /// Store files gzip-compressed (`<name>.gz`, `application/x-gzip`,
    /// metadata of the original in `original`).
    pub gzipped: bool,
    pub keep_old_files: bool,
    /// `attachment.resources.<bid>[.<cid>].<name>`, by `/buckets/<bid>` or
    /// `/buckets/<bid>/collections/<cid>`.
    pub resources: BTreeMap<String, AttachmentOverrides>,
}

/// Per bucket or collection attachment settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AttachmentOverrides {
    pub keep_old_files: Option<bool>,
    pub max_size_bytes: Option<u64>,
}

/// Kinto's plugin names, as written in `includes`.
pub mod plugin {
    pub const DEFAULT_BUCKET: &str = "kinto.plugins.default_bucket";
    pub const ACCOUNTS: &str = "kinto.plugins.accounts";
    pub const HISTORY: &str = "kinto.plugins.history";
    pub const FLUSH: &str = "kinto.plugins.flush";
    pub const PROMETHEUS: &str = "kinto.plugins.prometheus";
    pub const ATTACHMENT: &str = "kinto_attachment";
    /// Every plugin Cairn has a built-in equivalent for.
    pub const SUPPORTED: &[&str] = &[
        DEFAULT_BUCKET,
        ACCOUNTS,
        HISTORY,
        FLUSH,
        PROMETHEUS,
        ATTACHMENT,
    ];
}

/// An authentication policy of `multiauth.policies`, resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Policy {
    /// The accounts plugin's policy (user ids `account:<name>`).
    Accounts,
    /// Kinto's legacy Basic Auth (any user:password is a user).
    BasicAuth,
    /// A policy Cairn does not implement (OpenID…): never authenticates.
    Unsupported(String),
}

/// What the command line says (each `None` = not given).
#[derive(Debug, Clone, Default)]
pub struct SettingsSource {
    pub config_file: Option<PathBuf>,
    pub host: Option<String>,
    pub port: Option<u16>,
    pub data_dir: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("cannot read config file {}: {source}", path.display())]
    ReadConfig { path: PathBuf, source: io::Error },
    #[error("config file {} is not valid TOML: {message}", path.display())]
    ParseConfig { path: PathBuf, message: String },
    #[error("Settings '{first}', '{second}' are in conflict.")]
    Conflict { first: String, second: String },
    #[error("invalid value for setting {name} ({origin}): expected {expected}, got {value}")]
    InvalidValue {
        name: String,
        origin: String,
        expected: &'static str,
        value: String,
    },
    #[error("cannot keep secrets in {}: {source}", path.display())]
    Secrets { path: PathBuf, source: io::Error },
    #[error("secrets file {} is damaged: {message}", path.display())]
    SecretsFile { path: PathBuf, message: String },
    /// Settings that are each valid but do not make sense together (Kinto's
    /// `ConfigurationError`).
    #[error("configuration error: {0}")]
    Inconsistent(String),
}

/// Environment variables that configure settings start with this.
const ENV_PREFIX: &str = "KINTO_";
/// Config keys may start with this.
const NAME_PREFIX: &str = "kinto.";
/// `KINTO_INI` names the config file for Kinto's CLI; not a setting.
const ENV_NOT_SETTINGS: &[&str] = &["KINTO_INI"];
/// Where generated secrets are kept, inside the data directory.
pub const SECRETS_FILE: &str = "secrets.json";
const USERID_SECRET: &str = "userid_hmac_secret";
const DEFAULT_BUCKET_SECRET: &str = "default_bucket_hmac_secret";

impl Default for Settings {
    /// The embedded defaults (secrets not configured yet).
    fn default() -> Self {
        Settings {
            host: "127.0.0.1".to_owned(),
            port: 8888,
            data_dir: PathBuf::from("./cairn-data"),
            userid_hmac_secret: Secret::new(""),
            default_bucket_hmac_secret: Secret::new(""),
            bucket_create_principals: vec!["system.Authenticated".to_owned()],
            paginate_by: None,
            storage_max_fetch_size: 10_000,
            batch_max_requests: 25,
            readonly: false,
            backoff: None,
            backoff_percentage: None,
            retry_after_seconds: 3,
            eos: None,
            eos_message: None,
            eos_url: None,
            request_body_max_bytes: 16 * 1024 * 1024,
            cors_origins: vec!["*".to_owned()],
            cors_max_age_seconds: 3600,
            project_name: "kinto".to_owned(),
            project_version: env!("CARGO_PKG_VERSION").to_owned(),
            http_api_version: "1.23".to_owned(),
            includes: vec![plugin::DEFAULT_BUCKET.to_owned()],
            multiauth_policies: None,
            multiauth_policy_use: BTreeMap::new(),
            account_create_principals: Vec::new(),
            account_write_principals: Vec::new(),
            account_read_principals: Vec::new(),
            account_cache_ttl_seconds: 30,
            experimental_permissions_endpoint: false,
            permissions_read_principals: vec!["system.Everyone".to_owned()],
            history_exclude_resources: Vec::new(),
            history_exclude_user_ids: Vec::new(),
            prometheus_prefix: None,
            attachment: AttachmentSettings::default(),
            ignored: Vec::new(),
            unknown: Vec::new(),
        }
    }
}

/// A value as a source gave it, before it is typed.
enum Raw<'a> {
    /// From the environment: text, JSON-decoded on use.
    Env(&'a str),
    /// From the config file.
    File(&'a toml::Value),
}

impl Settings {
    /// Defaults (host 127.0.0.1, port 8888, data ./cairn-data) < config file
    /// < `KINTO_*` environment variables < command-line flags. `env` is passed
    /// in (normally `std::env::vars().collect()`) so tests need not touch the
    /// process environment. Does not touch the data directory.
    pub fn load(src: &SettingsSource, env: &[(String, String)]) -> Result<Settings, SettingsError> {
        Settings::load_with_ini(src, None, env)
    }

    /// [`Settings::load`], with a Kinto ini file (`[app:main]`,
    /// `[server:main]`) read first: defaults < ini < TOML config file <
    /// environment < flags.
    pub fn load_with_ini(
        src: &SettingsSource,
        ini: Option<&Path>,
        env: &[(String, String)],
    ) -> Result<Settings, SettingsError> {
        let mut settings = Settings::default();

        if let Some(path) = ini {
            for (key, value) in crate::plugins::config_ini::read_ini(path)? {
                let origin = format!("{} key '{key}'", path.display());
                let name = key.strip_prefix(NAME_PREFIX).unwrap_or(&key);
                settings.apply_or_report(name, &key, Raw::File(&value), &origin)?;
            }
        }

        if let Some(path) = &src.config_file {
            for (key, value) in read_config(path)? {
                let origin = format!("{} key '{key}'", path.display());
                let name = key.strip_prefix(NAME_PREFIX).unwrap_or(&key);
                settings.apply_or_report(name, &key, Raw::File(&value), &origin)?;
            }
        }

        let mut env: Vec<&(String, String)> = env
            .iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX))
            .collect();
        env.sort();
        for (key, value) in env {
            if ENV_NOT_SETTINGS.contains(&key.as_str()) {
                continue;
            }
            let name = env_setting_name(&key[ENV_PREFIX.len()..].to_lowercase());
            settings.apply_or_report(&name, key, Raw::Env(value), &format!("environment {key}"))?;
        }

        if let Some(host) = &src.host {
            settings.host = host.clone();
        }
        if let Some(port) = src.port {
            settings.port = port;
        }
        if let Some(data_dir) = &src.data_dir {
            settings.data_dir = data_dir.clone();
        }
        settings.check_consistency()?;
        Ok(settings)
    }

    /// [`Self::apply`], recording names that are not understood (`unknown`)
    /// or that do not apply to Cairn (`ignored`).
    fn apply_or_report(
        &mut self,
        name: &str,
        as_given: &str,
        raw: Raw<'_>,
        origin: &str,
    ) -> Result<(), SettingsError> {
        if !self.apply(name, raw, origin)? {
            if is_not_applicable(name) {
                self.ignored.push(as_given.to_owned());
            } else {
                self.unknown.push(as_given.to_owned());
            }
        }
        Ok(())
    }

    /// Is the Kinto plugin `name` (e.g. `kinto.plugins.history`) included?
    pub fn includes(&self, name: &str) -> bool {
        self.includes.iter().any(|i| i == name)
    }

    /// Plugins named in `includes` that Cairn has no equivalent for.
    pub fn unsupported_includes(&self) -> Vec<String> {
        self.includes
            .iter()
            .filter(|i| !plugin::SUPPORTED.contains(&i.as_str()))
            .cloned()
            .collect()
    }

    /// The authentication policies in order. Not configured: `basicauth`,
    /// preceded by `account` when the accounts plugin is included (Kinto
    /// would authenticate nobody, and refuse to start with accounts but no
    /// accounts policy: Cairn picks the usual setup instead).
    pub fn policies(&self) -> Vec<Policy> {
        let names = match &self.multiauth_policies {
            Some(names) => names.clone(),
            None if self.includes(plugin::ACCOUNTS) => {
                vec!["account".to_owned(), "basicauth".to_owned()]
            }
            None => vec!["basicauth".to_owned()],
        };
        names.iter().map(|n| self.policy(n)).collect()
    }

    /// What the policy called `name` is: its `.use` setting if given, else
    /// the built-in meaning of the names `basicauth` and `account(s)`.
    fn policy(&self, name: &str) -> Policy {
        match self.multiauth_policy_use.get(name) {
            Some(using) if using.ends_with("AccountsPolicy") => Policy::Accounts,
            Some(using) if using.to_lowercase().contains("basicauth") => Policy::BasicAuth,
            Some(using) => Policy::Unsupported(format!("{name} ({using})")),
            None => match name {
                "basicauth" => Policy::BasicAuth,
                "account" | "accounts" => Policy::Accounts,
                other => Policy::Unsupported(other.to_owned()),
            },
        }
    }

    /// Kinto's start-up checks of settings that only make sense together.
    fn check_consistency(&self) -> Result<(), SettingsError> {
        let policies = self.policies();
        let accounts_at = policies.iter().position(|p| *p == Policy::Accounts);
        let basic_at = policies.iter().position(|p| *p == Policy::BasicAuth);
        if self.includes(plugin::ACCOUNTS) && accounts_at.is_none() {
            return Err(SettingsError::Inconsistent(
                "the accounts plugin is included but no policy of multiauth.policies uses kinto.plugins.accounts.AccountsPolicy".to_owned(),
            ));
        }
        if let (Some(a), Some(b)) = (accounts_at, basic_at) {
            if b < a {
                return Err(SettingsError::Inconsistent(
                    "basicauth must not come before the accounts policy in multiauth.policies (it would accept every account login)".to_owned(),
                ));
            }
        }
        for p in &self.account_create_principals {
            if p != "system.Everyone" && !self.account_write_principals.contains(p) {
                return Err(SettingsError::Inconsistent(format!(
                    "'{p}' is in account_create_principals but not in account_write_principals"
                )));
            }
        }
        Ok(())
    }

    /// Sets the setting `name` (unprefixed) from `raw`. `Ok(false)` when the
    /// name is not one Cairn understands.
    fn apply(&mut self, name: &str, raw: Raw<'_>, origin: &str) -> Result<bool, SettingsError> {
        let field = Field { name, raw, origin };
        match name {
            "host" => self.host = field.text()?,
            "port" => {
                let port = field.unsigned()?;
                self.port =
                    u16::try_from(port).map_err(|_| field.invalid("a port number (0-65535)"))?;
            }
            "data_dir" => self.data_dir = PathBuf::from(field.text()?),
            USERID_SECRET => self.userid_hmac_secret = Secret::new(field.text()?),
            DEFAULT_BUCKET_SECRET => self.default_bucket_hmac_secret = Secret::new(field.text()?),
            "bucket_create_principals" => self.bucket_create_principals = field.list()?,
            "paginate_by" => {
                self.paginate_by = match field.json() {
                    Value::Null => None,
                    _ => Some(field.unsigned()?).filter(|&n| n > 0),
                }
            }
            "storage_max_fetch_size" => {
                self.storage_max_fetch_size = Some(field.unsigned()?)
                    .filter(|&n| n > 0)
                    .ok_or_else(|| field.invalid("a positive integer"))?
            }
            "batch_max_requests" => self.batch_max_requests = field.unsigned()?,
            "readonly" => self.readonly = field.boolean()?,
            "backoff" => self.backoff = Some(field.unsigned()?).filter(|&n| n > 0),
            "backoff_percentage" => self.backoff_percentage = Some(field.unsigned()?),
            "retry_after_seconds" => self.retry_after_seconds = field.unsigned()?,
            "eos" => self.eos = Some(field.text()?).filter(|t| !t.is_empty()),
            "eos_message" => self.eos_message = Some(field.text()?),
            "eos_url" => self.eos_url = Some(field.text()?),
            "request_body_max_bytes" => self.request_body_max_bytes = field.unsigned()?,
            "cors_origins" => self.cors_origins = field.list()?,
            "cors_max_age_seconds" => self.cors_max_age_seconds = field.unsigned()?,
            "project_name" => self.project_name = field.text()?,
            "project_version" => self.project_version = field.text()?,
            "http_api_version" => self.http_api_version = field.text()?,
            "includes" => self.includes = field.list()?,
            "multiauth.policies" => self.multiauth_policies = Some(field.list()?),
            "account_create_principals" => self.account_create_principals = field.list()?,
            "account_write_principals" => self.account_write_principals = field.list()?,
            "account_read_principals" => self.account_read_principals = field.list()?,
            "account_cache_ttl_seconds" => self.account_cache_ttl_seconds = field.unsigned()?,
            "experimental_permissions_endpoint" => {
                self.experimental_permissions_endpoint = field.boolean()?
            }
            "permissions_read_principals" => self.permissions_read_principals = field.list()?,
            "history.exclude_resources" => self.history_exclude_resources = field.list()?,
            "history.exclude_user_ids" => self.history_exclude_user_ids = field.list()?,
            "prometheus_prefix" => self.prometheus_prefix = Some(field.text()?),
            "attachment.base_path" => {
                self.attachment.base_path = Some(PathBuf::from(field.text()?))
            }
            "attachment.base_url" => self.attachment.base_url = Some(field.text()?),
            "attachment.extensions" => self.attachment.extensions = Some(field.list()?),
            "attachment.max_size_bytes" => self.attachment.max_size_bytes = Some(field.unsigned()?),
            "attachment.gzipped" => self.attachment.gzipped = field.boolean()?,
            "attachment.keep_old_files" => self.attachment.keep_old_files = field.boolean()?,
            "attachment.extra.base_url" => self.attachment.extra_base_url = Some(field.text()?),
            "attachment.folder" => self.attachment.folder = Some(field.text()?),
            "attachment.mimetypes" => self.attachment.mimetypes = Some(field.text()?),
            _ if name.starts_with("attachment.resources.") => {
                return self.apply_attachment_resource(name, &field)
            }
            _ => {
                let Some(policy) = name
                    .strip_prefix("multiauth.policy.")
                    .and_then(|rest| rest.strip_suffix(".use"))
                else {
                    return Ok(false);
                };
                self.multiauth_policy_use
                    .insert(policy.to_owned(), field.text()?);
            }
        }
        Ok(true)
    }

    /// `attachment.resources.<bid>[.<cid>].<name>` (kinto-attachment's
    /// per bucket / collection settings). `Ok(false)` for names Cairn does
    /// not apply (`randomize`, `filename_pattern`: files are named by
    /// content here); a malformed name is an error, as in Kinto.
    fn apply_attachment_resource(
        &mut self,
        name: &str,
        field: &Field<'_>,
    ) -> Result<bool, SettingsError> {
        let rest = &name["attachment.resources.".len()..];
        let parts: Vec<&str> = rest.split('.').collect();
        let (uri, setting) = match parts.as_slice() {
            [bid, setting] => (format!("/buckets/{bid}"), *setting),
            [bid, cid, setting] => (format!("/buckets/{bid}/collections/{cid}"), *setting),
            _ => {
                return Err(SettingsError::Inconsistent(format!(
                    "Configuration rule malformed: `{name}`"
                )))
            }
        };
        let entry = self.attachment.resources.entry(uri).or_default();
        match setting {
            "keep_old_files" => entry.keep_old_files = Some(field.boolean()?),
            "max_size_bytes" => entry.max_size_bytes = Some(field.unsigned()?),
            "randomize" | "filename_pattern" => return Ok(false),
            other => {
                return Err(SettingsError::Inconsistent(format!(
                    "`{other}` is not a supported setting name. Read `{name}`"
                )))
            }
        }
        Ok(true)
    }

    /// For each secret not configured: take it from `<data_dir>/secrets.json`,
    /// or generate 32 random bytes (64 hex digits) and write the file (mode
    /// 0600, data directory created if needed), so user ids and personal
    /// buckets stay the same across restarts. Configured secrets are used as
    /// they are and never written. Blocking I/O: call it before serving.
    pub fn ensure_secrets(&mut self) -> Result<(), SettingsError> {
        if !self.userid_hmac_secret.is_empty() && !self.default_bucket_hmac_secret.is_empty() {
            return Ok(());
        }
        let path = self.data_dir.join(SECRETS_FILE);
        let io_error = |source| SettingsError::Secrets {
            path: path.clone(),
            source,
        };
        fs::create_dir_all(&self.data_dir).map_err(io_error)?;
        let mut stored = match fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Value>(&bytes) {
                Ok(Value::Object(map)) => map,
                Ok(_) => {
                    return Err(SettingsError::SecretsFile {
                        path,
                        message: "not a JSON object".to_owned(),
                    })
                }
                Err(err) => {
                    return Err(SettingsError::SecretsFile {
                        path,
                        message: err.to_string(),
                    })
                }
            },
            Err(err) if err.kind() == io::ErrorKind::NotFound => Map::new(),
            Err(err) => return Err(io_error(err)),
        };

        let mut changed = false;
        for (name, secret) in [
            (USERID_SECRET, &mut self.userid_hmac_secret),
            (DEFAULT_BUCKET_SECRET, &mut self.default_bucket_hmac_secret),
        ] {
            if !secret.is_empty() {
                continue;
            }
            match stored
                .get(name)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                Some(kept) => *secret = Secret::new(kept),
                None => {
                    let generated = generate_secret();
                    stored.insert(name.to_owned(), Value::String(generated.clone()));
                    *secret = Secret::new(generated);
                    changed = true;
                }
            }
        }
        if changed {
            write_private_file(&path, &Value::Object(stored)).map_err(io_error)?;
        }
        Ok(())
    }

    /// The `settings` object of `GET /v1/` (spec `api-around.md` 4.3).
    pub fn public_settings(&self) -> Value {
        serde_json::json!({
            "batch_max_requests": self.batch_max_requests,
            "readonly": self.readonly,
            "explicit_permissions": true,
        })
    }
}

/// One value being typed, with what is needed to report it.
struct Field<'a> {
    name: &'a str,
    raw: Raw<'a>,
    origin: &'a str,
}

impl Field<'_> {
    fn invalid(&self, expected: &'static str) -> SettingsError {
        let value = match &self.raw {
            Raw::Env(text) => format!("{text:?}"),
            Raw::File(value) => toml_to_json(value).to_string(),
        };
        let value = if is_secret(self.name) {
            "[redacted]".to_owned()
        } else {
            value
        };
        SettingsError::InvalidValue {
            name: self.name.to_owned(),
            origin: self.origin.to_owned(),
            expected,
            value,
        }
    }

    /// The value as Kinto sees it: strings JSON-decoded when they parse.
    fn json(&self) -> Value {
        match &self.raw {
            Raw::Env(text) => native_value(text),
            Raw::File(toml::Value::String(text)) => native_value(text),
            Raw::File(value) => toml_to_json(value),
        }
    }

    /// The text as given (never JSON-decoded: a secret `"123"` stays `123`).
    fn text(&self) -> Result<String, SettingsError> {
        match &self.raw {
            Raw::Env(text) => Ok((*text).to_owned()),
            Raw::File(toml::Value::String(text)) => Ok(text.clone()),
            Raw::File(toml::Value::Integer(i)) => Ok(i.to_string()),
            Raw::File(toml::Value::Float(f)) => Ok(f.to_string()),
            Raw::File(toml::Value::Boolean(b)) => Ok(b.to_string()),
            Raw::File(_) => Err(self.invalid("a string")),
        }
    }

    fn unsigned(&self) -> Result<u64, SettingsError> {
        self.json()
            .as_u64()
            .ok_or_else(|| self.invalid("a non-negative integer"))
    }

    /// JSON `true`/`false`, or Pyramid's `asbool` words.
    fn boolean(&self) -> Result<bool, SettingsError> {
        match self.json() {
            Value::Bool(b) => Ok(b),
            Value::Number(n) if n.as_u64() == Some(0) => Ok(false),
            Value::Number(n) if n.as_u64() == Some(1) => Ok(true),
            Value::String(s) => match s.trim().to_lowercase().as_str() {
                "true" | "t" | "yes" | "y" | "on" | "1" => Ok(true),
                "false" | "f" | "no" | "n" | "off" | "0" | "" => Ok(false),
                _ => Err(self.invalid("a boolean")),
            },
            _ => Err(self.invalid("a boolean")),
        }
    }

    /// A list of strings: an array, or text split on whitespace and commas.
    fn list(&self) -> Result<Vec<String>, SettingsError> {
        match self.json() {
            Value::Null => Ok(Vec::new()),
            Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(self.invalid("a list of strings")),
                })
                .collect(),
            // Split the raw text, not a decoded form (`"5"` would be a number).
            _ => Ok(self
                .text()?
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect()),
        }
    }
}

/// Kinto settings that configure what Cairn does not have (Python storage,
/// cache and permission backends, pools, WSGI and logging details): accepted
/// and reported at start, never an error.
fn is_not_applicable(name: &str) -> bool {
    const PREFIXES: &[&str] = &[
        "storage_",
        "cache_",
        "permission_",
        "statsd_",
        "sentry_",
        "newrelic_",
        "profiler_",
        "multiauth.policy.",
        // kinto-attachment's cloud backends and file naming: Cairn stores
        // files by content in its data directory.
        "attachment.gcloud.",
        "attachment.aws.",
        "attachment.resources.",
    ];
    const NAMES: &[&str] = &[
        "attachment.randomize",
        "attachment.filename_pattern",
        "use",
        "pyramid.debug_notfound",
        "pyramid.debug_routematch",
        "pyramid.reload_templates",
        "pyramid.includes",
        "transaction_per_request",
        "json_renderer",
        "multiauth.groupfinder",
        "multiauth.authorization_policy",
        "bucket_id_generator",
        "collection_id_generator",
        "group_id_generator",
        "record_id_generator",
        "id_generator",
        "version_json_path",
        "event_listeners",
        "heartbeat_timeout_seconds",
    ];
    name != "storage_max_fetch_size"
        && (NAMES.contains(&name) || PREFIXES.iter().any(|p| name.starts_with(p)))
}

/// The setting named by an environment variable (after `KINTO_`, lower
/// case): dots and dashes became underscores, so dotted names are looked up.
fn env_setting_name(lower: &str) -> String {
    const DOTTED: &[&str] = &[
        "multiauth.policies",
        "history.exclude_resources",
        "history.exclude_user_ids",
        "attachment.base_path",
        "attachment.base_url",
        "attachment.extensions",
        "attachment.max_size_bytes",
        "attachment.gzipped",
        "attachment.keep_old_files",
        "attachment.extra.base_url",
        "attachment.folder",
        "attachment.mimetypes",
        "attachment.randomize",
        "attachment.filename_pattern",
    ];
    if let Some(d) = DOTTED.iter().find(|d| d.replace(['.', '-'], "_") == lower) {
        return (*d).to_owned();
    }
    if let Some(name) = lower
        .strip_prefix("multiauth_policy_")
        .and_then(|rest| rest.strip_suffix("_use"))
    {
        return format!("multiauth.policy.{name}.use");
    }
    lower.to_owned()
}

fn is_secret(name: &str) -> bool {
    name == USERID_SECRET || name == DEFAULT_BUCKET_SECRET
}

/// Kinto's `native_value`: the JSON value of `text` if it is JSON, else the text.
fn native_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_owned()))
}

fn toml_to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .iter()
                .map(|(k, v)| (k.clone(), toml_to_json(v)))
                .collect(),
        ),
    }
}

/// The config file as (dotted name, value) pairs, `kinto.` prefix kept,
/// after checking that no setting is given twice with different values.
fn read_config(path: &Path) -> Result<Vec<(String, toml::Value)>, SettingsError> {
    let text = fs::read_to_string(path).map_err(|source| SettingsError::ReadConfig {
        path: path.to_owned(),
        source,
    })?;
    let table: toml::Table = toml::from_str(&text).map_err(|err| SettingsError::ParseConfig {
        path: path.to_owned(),
        message: err.to_string(),
    })?;
    let mut entries = Vec::new();
    flatten("", &table, &mut entries);

    for (i, (key, value)) in entries.iter().enumerate() {
        let name = key.strip_prefix(NAME_PREFIX).unwrap_or(key);
        for (other_key, other_value) in &entries[i + 1..] {
            let other_name = other_key.strip_prefix(NAME_PREFIX).unwrap_or(other_key);
            if name == other_name && value != other_value {
                // Plain name first, then the prefixed one.
                let (first, second) = if key.starts_with(NAME_PREFIX) {
                    (other_key, key)
                } else {
                    (key, other_key)
                };
                return Err(SettingsError::Conflict {
                    first: first.clone(),
                    second: second.clone(),
                });
            }
        }
    }
    Ok(entries)
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut Vec<(String, toml::Value)>) {
    for (key, value) in table {
        let name = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match value {
            toml::Value::Table(inner) => flatten(&name, inner, out),
            other => out.push((name, other.clone())),
        }
    }
}

/// 32 random bytes from the OS, as 64 lowercase hex digits (as `kinto init`).
fn generate_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// Writes `value` as JSON to `path`, readable by the owner only, atomically
/// (temporary file, fsync, rename, fsync of the directory).
fn write_private_file(path: &Path, value: &Value) -> io::Result<()> {
    use std::io::Write;
    let tmp = path.with_extension("json.tmp");
    let _ = fs::remove_file(&tmp);
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(&tmp)?;
    let mut text = serde_json::to_string_pretty(value).map_err(io::Error::other)?;
    text.push('\n');
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    drop(file);
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        // Makes the rename durable; not all platforms can open a directory.
        if let Ok(dir) = fs::File::open(dir) {
            let _ = dir.sync_all();
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn config(text: &str) -> (tempfile::TempDir, SettingsSource) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("cairn.toml");
        fs::write(&path, text).expect("write config");
        (
            dir,
            SettingsSource {
                config_file: Some(path),
                ..SettingsSource::default()
            },
        )
    }

    #[test]
    fn defaults() {
        let s = Settings::load(&SettingsSource::default(), &[]).expect("load");
        assert_eq!(s.host, "127.0.0.1");
        assert_eq!(s.port, 8888);
        assert_eq!(s.data_dir, PathBuf::from("./cairn-data"));
        assert_eq!(s.bucket_create_principals, vec!["system.Authenticated"]);
        assert_eq!(s.paginate_by, None);
        assert_eq!(s.storage_max_fetch_size, 10_000);
        assert_eq!(s.batch_max_requests, 25);
        assert!(!s.readonly);
        assert_eq!(s.project_name, "kinto");
        assert_eq!(s.project_version, env!("CARGO_PKG_VERSION"));
        assert_eq!(s.http_api_version, "1.23");
        assert!(s.userid_hmac_secret.is_empty());
        assert!(s.default_bucket_hmac_secret.is_empty());
        assert!(s.unknown.is_empty());
    }

    #[test]
    fn secrets_are_redacted_in_debug() {
        let s = Settings {
            userid_hmac_secret: Secret::new("very-secret-1"),
            default_bucket_hmac_secret: Secret::new("very-secret-2"),
            ..Settings::default()
        };
        let shown = format!("{s:?}");
        assert!(!shown.contains("very-secret"), "{shown}");
        assert!(shown.contains("userid_hmac_secret: [redacted]"), "{shown}");
        assert_eq!(format!("{:?}", Secret::new("x")), "[redacted]");
        assert_eq!(s.userid_hmac_secret.expose(), "very-secret-1");
    }

    #[test]
    fn precedence_defaults_file_env_cli() {
        let (_dir, mut src) = config("port = 1000\nhost = \"0.0.0.0\"\nbatch_max_requests = 5\n");
        let s = Settings::load(&src, &[]).expect("load");
        assert_eq!(
            (s.port, s.host.as_str(), s.batch_max_requests),
            (1000, "0.0.0.0", 5)
        );

        let vars = env(&[
            ("KINTO_PORT", "2000"),
            ("KINTO_BATCH_MAX_REQUESTS", "7"),
            ("BATCH_MAX_REQUESTS", "9"),
        ]);
        let s = Settings::load(&src, &vars).expect("load");
        assert_eq!((s.port, s.batch_max_requests), (2000, 7));
        assert!(
            s.unknown.is_empty(),
            "unprefixed variables are not read: {:?}",
            s.unknown
        );

        src.port = Some(3000);
        src.host = Some("::1".to_owned());
        src.data_dir = Some(PathBuf::from("/tmp/d"));
        let s = Settings::load(&src, &vars).expect("load");
        assert_eq!(
            (s.port, s.host.as_str(), s.data_dir.as_path()),
            (3000, "::1", Path::new("/tmp/d"))
        );
    }

    #[test]
    fn env_values_are_json_decoded() {
        let vars = env(&[
            ("KINTO_READONLY", "true"),
            ("KINTO_PAGINATE_BY", "100"),
            ("KINTO_USERID_HMAC_SECRET", "123"),
            ("KINTO_DEFAULT_BUCKET_HMAC_SECRET", "\"quoted\""),
            ("KINTO_PROJECT_NAME", "cairn"),
            ("KINTO_DATA_DIR", "/srv/cairn"),
        ]);
        let s = Settings::load(&SettingsSource::default(), &vars).expect("load");
        assert!(s.readonly);
        assert_eq!(s.paginate_by, Some(100));
        // Secrets keep their text as given.
        assert_eq!(s.userid_hmac_secret.expose(), "123");
        assert_eq!(s.default_bucket_hmac_secret.expose(), "\"quoted\"");
        assert_eq!(s.project_name, "cairn");
        assert_eq!(s.data_dir, PathBuf::from("/srv/cairn"));

        let s = Settings::load(
            &SettingsSource::default(),
            &env(&[("KINTO_PAGINATE_BY", "null")]),
        )
        .expect("load");
        assert_eq!(s.paginate_by, None);
        let s = Settings::load(
            &SettingsSource::default(),
            &env(&[("KINTO_PAGINATE_BY", "0")]),
        )
        .expect("load");
        assert_eq!(s.paginate_by, None);
        let s = Settings::load(
            &SettingsSource::default(),
            &env(&[("KINTO_READONLY", "false")]),
        )
        .expect("load");
        assert!(!s.readonly);
        let s = Settings::load(
            &SettingsSource::default(),
            &env(&[("KINTO_READONLY", "yes")]),
        )
        .expect("load");
        assert!(s.readonly);
    }

    #[test]
    fn principal_lists() {
        for (raw, expected) in [
            ("system.Everyone", vec!["system.Everyone"]),
            ("a b\nc,d , e", vec!["a", "b", "c", "d", "e"]),
            ("[\"a b\", \"c\"]", vec!["a b", "c"]),
            ("", vec![]),
            ("null", vec![]),
        ] {
            let vars = env(&[("KINTO_BUCKET_CREATE_PRINCIPALS", raw)]);
            let s = Settings::load(&SettingsSource::default(), &vars).expect("load");
            assert_eq!(s.bucket_create_principals, expected, "{raw:?}");
        }
        let (_dir, src) =
            config("bucket_create_principals = [\"account:admin\", \"basicauth:x\"]\n");
        let s = Settings::load(&src, &[]).expect("load");
        assert_eq!(
            s.bucket_create_principals,
            vec!["account:admin", "basicauth:x"]
        );
        let (_dir, src) = config("bucket_create_principals = \"account:admin basicauth:x\"\n");
        let s = Settings::load(&src, &[]).expect("load");
        assert_eq!(
            s.bucket_create_principals,
            vec!["account:admin", "basicauth:x"]
        );
    }

    #[test]
    fn config_file_prefixes_tables_and_strings() {
        let (_dir, src) = config(
            "\"kinto.paginate_by\" = 10\n\
             kinto.batch_max_requests = 3\n\
             port = \"9000\"\n\
             readonly = true\n\
             userid_hmac_secret = 42\n",
        );
        let s = Settings::load(&src, &[]).expect("load");
        assert_eq!(s.paginate_by, Some(10));
        assert_eq!(s.batch_max_requests, 3);
        assert_eq!(s.port, 9000);
        assert!(s.readonly);
        assert_eq!(s.userid_hmac_secret.expose(), "42");
        assert!(s.unknown.is_empty(), "{:?}", s.unknown);

        let (_dir, src) = config("[kinto]\nproject_name = \"mine\"\n");
        assert_eq!(
            Settings::load(&src, &[]).expect("load").project_name,
            "mine"
        );
    }

    #[test]
    fn conflicting_prefixed_and_plain_names() {
        let (_dir, src) = config("paginate_by = 10\n\"kinto.paginate_by\" = 20\n");
        let err = Settings::load(&src, &[]).expect_err("conflict");
        assert_eq!(
            err.to_string(),
            "Settings 'paginate_by', 'kinto.paginate_by' are in conflict."
        );
        // Same value twice is fine.
        let (_dir, src) = config("paginate_by = 10\n\"kinto.paginate_by\" = 10\n");
        assert_eq!(
            Settings::load(&src, &[]).expect("load").paginate_by,
            Some(10)
        );
    }

    #[test]
    fn unknown_names_are_reported() {
        let (_dir, src) = config("includes = \"kinto.plugins.history\"\nmultiauth.policies = \"basicauth\"\npaginate_bye = 5\n");
        let vars = env(&[
            ("KINTO_STORAGE_BACKEND", "x"),
            ("KINTO_INI", "config/kinto.ini"),
            ("HOME", "/root"),
        ]);
        let s = Settings::load(&src, &vars).expect("load");
        assert_eq!(s.unknown, vec!["paginate_bye"]);
        assert_eq!(s.ignored, vec!["KINTO_STORAGE_BACKEND"]);
        assert_eq!(s.includes, vec!["kinto.plugins.history"]);
    }

    #[test]
    fn invalid_values_are_errors_that_name_the_source() {
        let err = Settings::load(&SettingsSource::default(), &env(&[("KINTO_PORT", "http")]))
            .expect_err("invalid");
        assert_eq!(
            err.to_string(),
            "invalid value for setting port (environment KINTO_PORT): expected a non-negative integer, got \"http\""
        );
        let err = Settings::load(&SettingsSource::default(), &env(&[("KINTO_PORT", "70000")]))
            .expect_err("invalid");
        assert!(matches!(err, SettingsError::InvalidValue { .. }));
        let err = Settings::load(
            &SettingsSource::default(),
            &env(&[("KINTO_READONLY", "maybe")]),
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("expected a boolean"));
        let err = Settings::load(
            &SettingsSource::default(),
            &env(&[("KINTO_STORAGE_MAX_FETCH_SIZE", "0")]),
        )
        .expect_err("invalid");
        assert!(err.to_string().contains("storage_max_fetch_size"));
        let (_dir, src) = config("userid_hmac_secret = [1]\n");
        let err = Settings::load(&src, &[]).expect_err("invalid");
        assert!(err.to_string().contains("got [redacted]"), "{err}");
        let (_dir, src) = config("port = [\n");
        assert!(matches!(
            Settings::load(&src, &[]),
            Err(SettingsError::ParseConfig { .. })
        ));
        let missing = SettingsSource {
            config_file: Some(PathBuf::from("/nonexistent/cairn.toml")),
            ..Default::default()
        };
        assert!(matches!(
            Settings::load(&missing, &[]),
            Err(SettingsError::ReadConfig { .. })
        ));
    }

    #[test]
    fn generated_secrets_are_kept_across_restarts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data_dir = dir.path().join("nested").join("data");
        let src = SettingsSource {
            data_dir: Some(data_dir.clone()),
            ..Default::default()
        };

        let mut first = Settings::load(&src, &[]).expect("load");
        first.ensure_secrets().expect("secrets");
        let user_secret = first.userid_hmac_secret.expose().to_owned();
        let bucket_secret = first.default_bucket_hmac_secret.expose().to_owned();
        assert_eq!(user_secret.len(), 64);
        assert!(user_secret.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(user_secret, bucket_secret);

        let file = data_dir.join(SECRETS_FILE);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&file).expect("metadata").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        let mut second = Settings::load(&src, &[]).expect("load");
        second.ensure_secrets().expect("secrets");
        assert_eq!(second.userid_hmac_secret.expose(), user_secret);
        assert_eq!(second.default_bucket_hmac_secret.expose(), bucket_secret);
    }

    #[test]
    fn configured_secrets_win_and_are_not_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = SettingsSource {
            data_dir: Some(dir.path().to_owned()),
            ..Default::default()
        };
        let vars = env(&[
            ("KINTO_USERID_HMAC_SECRET", "u"),
            ("KINTO_DEFAULT_BUCKET_HMAC_SECRET", "b"),
        ]);
        let mut s = Settings::load(&src, &vars).expect("load");
        s.ensure_secrets().expect("secrets");
        assert_eq!(
            (
                s.userid_hmac_secret.expose(),
                s.default_bucket_hmac_secret.expose()
            ),
            ("u", "b")
        );
        assert!(!dir.path().join(SECRETS_FILE).exists());

        // Only the missing one is generated and stored.
        let vars = env(&[("KINTO_USERID_HMAC_SECRET", "u")]);
        let mut s = Settings::load(&src, &vars).expect("load");
        s.ensure_secrets().expect("secrets");
        assert_eq!(s.userid_hmac_secret.expose(), "u");
        let stored: Value =
            serde_json::from_slice(&fs::read(dir.path().join(SECRETS_FILE)).expect("read"))
                .expect("json");
        assert_eq!(stored.get(USERID_SECRET), None);
        assert_eq!(
            stored[DEFAULT_BUCKET_SECRET].as_str(),
            Some(s.default_bucket_hmac_secret.expose())
        );
    }

    #[test]
    fn damaged_secrets_file_is_an_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join(SECRETS_FILE), "not json").expect("write");
        let src = SettingsSource {
            data_dir: Some(dir.path().to_owned()),
            ..Default::default()
        };
        let mut s = Settings::load(&src, &[]).expect("load");
        assert!(matches!(
            s.ensure_secrets(),
            Err(SettingsError::SecretsFile { .. })
        ));
    }

    #[test]
    fn public_settings_of_the_root_view() {
        assert_eq!(
            Settings::default().public_settings(),
            serde_json::json!({"batch_max_requests": 25, "readonly": false, "explicit_permissions": true})
        );
    }
}
