//! Starting, stopping and restarting the real `cairn` binary.
//!
//! * [`Server::shared`]: one server per test binary (a `OnceLock`), or the
//!   external server named by `KINTO_URL` (differential runs against the
//!   reference). Tests isolate themselves with fresh ids and user names.
//! * [`Server::start`] / [`Server::start_on`]: a server owned by one test,
//!   for restart and crash tests; killed when dropped.
//!
//! The binary is `$CAIRN_BIN` if set, else `target/{debug,release}/cairn`
//! of this workspace (the profile the tests are built with), which is built
//! with `cargo build -p cairn --bin cairn` first when missing. Run
//! `cargo build -p cairn` before `cargo test -p cairn-tests` so the binary
//! is current.
//!
//! Each spawned server has a watchdog (`sh`) holding the read end of a pipe
//! whose write end this process owns: when the test process exits, even
//! without running destructors (a `static` server never is dropped), the
//! watchdog SIGKILLs the server and removes its temporary directory.

use std::collections::HashMap;
use std::fs;
use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::http::{Endpoint, Request, Response};
use crate::User;

/// Secrets passed to every spawned server, so user ids and personal bucket
/// ids are the ones of api-around.md's test vectors.
pub const USERID_HMAC_SECRET: &str = "s3cr3t";
pub const DEFAULT_BUCKET_HMAC_SECRET: &str = "bucketsalt";

/// A running server: spawned (and owned) or external.
#[derive(Debug)]
pub struct Server {
    endpoint: Endpoint,
    proc: Option<Proc>,
    /// Data directory of a spawned server (kept across restarts).
    data: Option<PathBuf>,
    /// Extra environment given to the spawned process (kept across restarts).
    env: Vec<(String, String)>,
    /// See [`Options::omit_secrets`].
    omit_secrets: bool,
    /// See [`Options::args`].
    args: Vec<String>,
    /// See [`Options::ready_on_any_answer`].
    ready_on_any_answer: bool,
    /// User ids as reported by `GET /` (cache: one request per user).
    userids: Mutex<HashMap<(String, String), String>>,
}

#[derive(Debug)]
struct Proc {
    child: Child,
    watchdog: Child,
    log: PathBuf,
    /// A directory to remove with the process (the shared server's, whose
    /// `Proc` is only dropped when its start failed).
    cleanup: Option<PathBuf>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.watchdog.kill();
        let _ = self.watchdog.wait();
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(dir) = &self.cleanup {
            let _ = fs::remove_dir_all(dir);
        }
    }
}

static SHARED: OnceLock<Server> = OnceLock::new();
static BIN: OnceLock<PathBuf> = OnceLock::new();

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The `cairn` binary to run (see the module doc).
pub fn cairn_bin() -> &'static Path {
    BIN.get_or_init(|| {
        if let Some(bin) = std::env::var_os("CAIRN_BIN") {
            return PathBuf::from(bin);
        }
        let release = !cfg!(debug_assertions);
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| workspace_root().join("target"));
        let bin = target
            .join(if release { "release" } else { "debug" })
            .join("cairn");
        if !bin.exists() {
            let mut cmd = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
            cmd.current_dir(workspace_root())
                .args(["build", "-p", "cairn", "--bin", "cairn"]);
            if release {
                cmd.arg("--release");
            }
            let status = cmd.status().expect("run cargo build -p cairn");
            assert!(status.success(), "cargo build -p cairn failed");
        }
        assert!(bin.exists(), "no cairn binary at {}", bin.display());
        bin
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("bind a free port")
        .local_addr()
        .unwrap()
        .port()
}

/// Options for a spawned server.
#[derive(Debug, Default, Clone)]
pub struct Options {
    pub env: Vec<(String, String)>,
    /// Do not pass the test secrets: the server generates its own.
    pub omit_secrets: bool,
    /// Extra `cairn serve` arguments (e.g. `--ini FILE`), kept across restarts.
    pub args: Vec<String>,
    /// The server is up once `GET /v1/__heartbeat__` gets any HTTP answer,
    /// not only a 200 (a server past its end-of-service date answers 410).
    pub ready_on_any_answer: bool,
}

impl Server {
    /// The server shared by every test of this test binary: `KINTO_URL` if
    /// set, else a spawned `cairn` with a temporary data directory.
    pub fn shared() -> &'static Server {
        SHARED.get_or_init(|| match std::env::var("KINTO_URL") {
            Ok(url) if !url.is_empty() => Server::external(&url),
            _ => {
                let dir = tempfile::Builder::new()
                    .prefix("cairn-test-")
                    .tempdir()
                    .expect("tempdir");
                // Kept until the process ends; the watchdog removes it.
                let root = dir.keep();
                Server::start_with(&root.join("data"), Options::default(), Some(&root))
            }
        })
    }

    /// A server shared by the test binary with Kinto's plugins on, as the
    /// reference's `start-kinto` configures them: accounts (sign-up open
    /// to everyone, `account:admin` administrator, policies `account
    /// basicauth`), default bucket, flush, history, Prometheus metrics and
    /// the permissions endpoint. `KINTO_URL`: that external server instead.
    pub fn with_plugins() -> &'static Server {
        static PLUGINS: OnceLock<Server> = OnceLock::new();
        PLUGINS.get_or_init(|| match std::env::var("KINTO_URL") {
            Ok(url) if !url.is_empty() => Server::external(&url),
            _ => {
                let root = tempfile::Builder::new()
                    .prefix("cairn-plugins-")
                    .tempdir()
                    .expect("tempdir")
                    .keep();
                let env = [
                    ("KINTO_INCLUDES", "kinto.plugins.default_bucket kinto.plugins.accounts kinto.plugins.flush kinto.plugins.history kinto.plugins.prometheus"),
                    ("KINTO_ACCOUNT_CREATE_PRINCIPALS", "system.Everyone"),
                    ("KINTO_ACCOUNT_WRITE_PRINCIPALS", "account:admin"),
                    ("KINTO_EXPERIMENTAL_PERMISSIONS_ENDPOINT", "true"),
                ];
                let opts = Options {
                    env: env
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    ..Options::default()
                };
                Server::start_with(&root.join("data"), opts, Some(&root))
            }
        })
    }

    /// An already running server, e.g. the reference Kinto.
    pub fn external(url: &str) -> Server {
        Server {
            endpoint: Endpoint::parse(url),
            proc: None,
            data: None,
            env: Vec::new(),
            omit_secrets: false,
            args: Vec::new(),
            ready_on_any_answer: false,
            userids: Mutex::new(HashMap::new()),
        }
    }

    /// True when tests run against `KINTO_URL` (nothing can be restarted).
    pub fn external_mode() -> bool {
        std::env::var("KINTO_URL")
            .map(|u| !u.is_empty())
            .unwrap_or(false)
    }

    /// A server owned by the caller, configured by these `KINTO_*`
    /// environment variables, on a temporary data directory removed with
    /// the process.
    pub fn start_with_env(env: &[(&str, &str)]) -> Server {
        Server::start_configured(env, Options::default())
    }

    /// [`Server::start_with_env`] with other options too (`opts.env` is
    /// extended by `env`).
    pub fn start_configured(env: &[(&str, &str)], mut opts: Options) -> Server {
        let root = tempfile::Builder::new()
            .prefix("cairn-configured-")
            .tempdir()
            .expect("tempdir")
            .keep();
        opts.env
            .extend(env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        Server::start_with(&root.join("data"), opts, Some(&root))
    }

    /// Spawns a server on `data` (created if missing), owned by the caller.
    pub fn start_on(data: &Path) -> Server {
        Server::start_with(data, Options::default(), None)
    }

    pub fn start_with(data: &Path, opts: Options, cleanup: Option<&Path>) -> Server {
        fs::create_dir_all(data).expect("create data dir");
        let mut server = Server {
            endpoint: Endpoint::parse("http://127.0.0.1:1/v1"),
            proc: None,
            data: Some(data.to_path_buf()),
            env: opts.env,
            omit_secrets: opts.omit_secrets,
            args: opts.args,
            ready_on_any_answer: opts.ready_on_any_answer,
            userids: Mutex::new(HashMap::new()),
        };
        server.spawn(cleanup);
        server
    }

    fn spawn(&mut self, cleanup: Option<&Path>) {
        let data = self.data.clone().expect("spawned server has a data dir");
        let port = free_port();
        let log = data
            .parent()
            .unwrap_or(&data)
            .join(format!("cairn-{port}.log"));
        let log_file = fs::File::create(&log).expect("create server log");
        let mut cmd = Command::new(cairn_bin());
        cmd.args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            &port.to_string(),
            "--data",
        ])
        .arg(&data)
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().expect("dup log"))
        .stderr(log_file);
        for (k, _) in std::env::vars() {
            if k.starts_with("KINTO_") || k.starts_with("CAIRN_") {
                cmd.env_remove(k);
            }
        }
        cmd.args(&self.args);
        if !self.omit_secrets {
            cmd.env("KINTO_USERID_HMAC_SECRET", USERID_HMAC_SECRET).env(
                "KINTO_DEFAULT_BUCKET_HMAC_SECRET",
                DEFAULT_BUCKET_HMAC_SECRET,
            );
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", cairn_bin().display()));
        let script = r#"read _unused; kill -KILL "$0" 2>/dev/null; if [ -n "$1" ]; then sleep 0.3; rm -rf "$1"; fi"#;
        let cleanup_arg = cleanup.map(|p| p.display().to_string()).unwrap_or_default();
        let watchdog = Command::new("sh")
            .args(["-c", script, &child.id().to_string(), &cleanup_arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn watchdog");
        self.endpoint = Endpoint::parse(&format!("http://127.0.0.1:{port}/v1"));
        self.proc = Some(Proc {
            child,
            watchdog,
            log,
            cleanup: cleanup.map(Path::to_path_buf),
        });
        self.wait_ready();
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let proc = self.proc.as_mut().expect("spawned");
            if let Some(status) = proc.child.try_wait().expect("try_wait") {
                panic!(
                    "cairn exited during startup ({status})\n{}",
                    self.log_tail()
                );
            }
            let probe = Request::new(&self.endpoint, "GET", "/__heartbeat__")
                .try_send_timeout(Duration::from_secs(2));
            if let Ok(resp) = probe {
                if resp.status == 200 || self.ready_on_any_answer {
                    return;
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "cairn did not answer GET /v1/__heartbeat__ with 200 within 10 s\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(25));
        }
    }

    /// The last lines of the server's output (for failure messages).
    pub fn log_tail(&self) -> String {
        let Some(proc) = &self.proc else {
            return String::new();
        };
        let mut text = String::new();
        if let Ok(mut f) = fs::File::open(&proc.log) {
            let _ = f.read_to_string(&mut text);
        }
        let lines: Vec<&str> = text.lines().collect();
        let start = lines.len().saturating_sub(40);
        format!(
            "--- server log {} ---\n{}",
            proc.log.display(),
            lines[start..].join("\n")
        )
    }

    pub fn is_external(&self) -> bool {
        self.proc.is_none() && self.data.is_none()
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// `http://127.0.0.1:PORT/v1`
    pub fn root_url(&self) -> String {
        self.endpoint.root_url()
    }

    pub fn data_dir(&self) -> &Path {
        self.data.as_deref().expect("spawned server")
    }

    pub fn pid(&self) -> u32 {
        self.proc.as_ref().expect("running").child.id()
    }

    /// SIGKILL, and wait for the process to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut proc) = self.proc.take() {
            let _ = proc.child.kill();
            let _ = proc.child.wait();
        }
    }

    /// SIGTERM; waits (up to 10 s, then SIGKILL and panic) for the exit.
    /// Returns how long the process took to exit.
    pub fn terminate(&mut self) -> Duration {
        let mut proc = self.proc.take().expect("running");
        let start = Instant::now();
        let status = Command::new("kill")
            .args(["-TERM", &proc.child.id().to_string()])
            .status();
        assert!(
            status.map(|s| s.success()).unwrap_or(false),
            "kill -TERM failed"
        );
        loop {
            if proc.child.try_wait().expect("try_wait").is_some() {
                return start.elapsed();
            }
            if start.elapsed() > Duration::from_secs(10) {
                let _ = proc.child.kill();
                panic!("cairn did not exit within 10 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts again on the same data dir (after [`Server::kill9`] or
    /// [`Server::terminate`]; a running server is stopped with SIGTERM).
    pub fn restart(&mut self) {
        if self.proc.is_some() {
            self.terminate();
        }
        self.userids.lock().unwrap().clear();
        self.spawn(None);
    }

    // ---- requests ------------------------------------------------------

    /// A request to `path` (relative to `/v1`).
    pub fn req(&self, method: &str, path: &str) -> Request {
        Request::new(&self.endpoint, method, path)
    }

    pub fn get(&self, path: &str, user: &User) -> Response {
        self.req("GET", path).user(user).send()
    }

    pub fn head(&self, path: &str, user: &User) -> Response {
        self.req("HEAD", path).user(user).send()
    }

    pub fn delete(&self, path: &str, user: &User) -> Response {
        self.req("DELETE", path).user(user).send()
    }

    pub fn put(&self, path: &str, user: &User, body: Value) -> Response {
        self.req("PUT", path).user(user).json(&body).send()
    }

    pub fn post(&self, path: &str, user: &User, body: Value) -> Response {
        self.req("POST", path).user(user).json(&body).send()
    }

    pub fn patch(&self, path: &str, user: &User, body: Value) -> Response {
        self.req("PATCH", path).user(user).json(&body).send()
    }

    /// The user id the server derives for `user` (`GET /` → `user.id`).
    pub fn userid(&self, user: &User) -> String {
        let key = (user.name.clone(), user.password.clone());
        if let Some(id) = self.userids.lock().unwrap().get(&key) {
            return id.clone();
        }
        let resp = self.get("/", user).expect(200);
        let id = resp.json()["user"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no user.id in GET /\n{resp}"))
            .to_string();
        self.userids.lock().unwrap().insert(key, id.clone());
        id
    }
}
