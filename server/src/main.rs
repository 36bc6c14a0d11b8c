//! The `cairn` command line: one binary for the daemon and its tools.
//!
//! Thin on purpose: each tool is a function in `cairn::tools` that returns
//! its result or a `ToolError`; this file parses arguments, prints, and
//! maps errors to exit statuses (the table is in `tools/error.rs`).

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use cairn::settings::{Settings, SettingsSource};
use cairn::tools::{self, DataDir, ProgressMode, ToolError, Until};
use clap::{Args, Parser, Subcommand};

/// mimalloc: the request path allocates many small short-lived buffers;
/// glibc malloc took about a quarter of the CPU of a GET under load.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(
    name = "cairn",
    version,
    about = "A Kinto-compatible store, sync and share JSON server on an append-only log"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the HTTP server (defaults: 127.0.0.1:8888, data in ./cairn-data).
    Serve {
        /// Interface to bind.
        #[arg(long)]
        host: Option<String>,
        /// Port to listen on.
        #[arg(long)]
        port: Option<u16>,
        /// Data directory (log, projections, secrets).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Configuration file (TOML, Kinto setting names).
        #[arg(long)]
        config: Option<PathBuf>,
        /// An existing Kinto ini file (`[app:main]`, `[server:main]`).
        #[arg(long)]
        ini: Option<PathBuf>,
    },
    /// Create an account, or reset its password (Kinto's `create-user`).
    CreateUser {
        /// Data directory (log, projections, secrets).
        #[arg(long)]
        data: Option<PathBuf>,
        /// Configuration file (TOML, Kinto setting names).
        #[arg(long)]
        config: Option<PathBuf>,
        /// An existing Kinto ini file.
        #[arg(long)]
        ini: Option<PathBuf>,
        /// The account id (prompted for when missing).
        #[arg(short, long)]
        username: Option<String>,
        /// The password (prompted for, twice, when missing).
        #[arg(short, long)]
        password: Option<String>,
    },
    /// Manage the projections (the views built from the log).
    Projections {
        #[command(subcommand)]
        command: ProjectionsCommand,
    },
    /// Audit the event log: verify, show, checkpoint, replay.
    Log {
        #[command(subcommand)]
        command: LogCommand,
    },
    /// Copy a data directory, live or not, into one verifiable archive file.
    Snapshot {
        #[command(flatten)]
        data: DataArgs,
        /// The archive to write (must not exist).
        #[arg(long)]
        out: PathBuf,
        #[command(flatten)]
        progress: ProgressArgs,
    },
    /// Check a snapshot, then restore it into a new data directory.
    Restore {
        /// The snapshot archive.
        file: PathBuf,
        /// The data directory to create (new or empty).
        #[arg(long)]
        into: PathBuf,
        /// Restore the state as of this time (epoch ms or RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Restore up to and including this log offset.
        #[arg(long, conflicts_with = "until")]
        until_offset: Option<u64>,
        #[command(flatten)]
        progress: ProgressArgs,
    },
}

#[derive(Debug, Subcommand)]
enum ProjectionsCommand {
    /// Throw the projections away and build them again from the log, with
    /// progress (the server must be stopped).
    Rebuild {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        progress: ProgressArgs,
    },
}

#[derive(Debug, Subcommand)]
enum LogCommand {
    /// Check every record's crc32 and the whole blake3 chain (safe on a live server).
    Verify {
        #[command(flatten)]
        data: DataArgs,
        /// A checkpoint (file, or inline JSON) the log must still extend.
        #[arg(long)]
        against: Option<String>,
        /// Print the report as JSON.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        progress: ProgressArgs,
    },
    /// Show events, filtered by time, object, user and action.
    Show {
        #[command(flatten)]
        data: DataArgs,
        /// Commits at or after this time (epoch ms or RFC 3339).
        #[arg(long)]
        since: Option<String>,
        /// Commits at or before this time (epoch ms or RFC 3339).
        #[arg(long)]
        until: Option<String>,
        /// Object path, e.g. /buckets/b/collections/c/records/r; `/buckets/b/*`
        /// for it and everything below; a trailing `*` for any path so prefixed.
        #[arg(long)]
        object: Option<String>,
        /// User id (repeatable), e.g. basicauth:1f2e…
        #[arg(long)]
        user: Vec<String>,
        /// create, update or delete (repeatable).
        #[arg(long)]
        action: Vec<String>,
        /// At most this many events.
        #[arg(long)]
        limit: Option<u64>,
        /// JSON lines (with data, permissions and, with --object, the state before).
        #[arg(long)]
        json: bool,
    },
    /// Verify the log, then print its head as a checkpoint to keep elsewhere.
    Checkpoint {
        #[command(flatten)]
        data: DataArgs,
        #[command(flatten)]
        progress: ProgressArgs,
    },
    /// Build a new data directory holding the state as of a moment.
    Replay {
        #[command(flatten)]
        data: DataArgs,
        /// The state as of this time (epoch ms or RFC 3339); default: the end.
        #[arg(long)]
        until: Option<String>,
        /// The state up to and including this log offset.
        #[arg(long, conflicts_with = "until")]
        until_offset: Option<u64>,
        /// The data directory to create (new or empty).
        #[arg(long)]
        into: PathBuf,
        #[command(flatten)]
        progress: ProgressArgs,
    },
}

/// Where the data directory is, resolved as `cairn serve` does.
#[derive(Debug, Args)]
struct DataArgs {
    /// Data directory (default: as `cairn serve`: ./cairn-data, config, KINTO_DATA_DIR).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Configuration file, to find `data_dir` in it.
    #[arg(long)]
    config: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ProgressArgs {
    /// No progress on stderr.
    #[arg(long, short)]
    quiet: bool,
    /// Plain progress lines even on a terminal.
    #[arg(long)]
    plain: bool,
}

impl ProgressArgs {
    fn mode(&self) -> ProgressMode {
        match (self.quiet, self.plain) {
            (true, _) => ProgressMode::Quiet,
            (false, true) => ProgressMode::Plain,
            (false, false) => ProgressMode::Auto,
        }
    }
}

impl DataArgs {
    fn resolve(&self) -> Result<DataDir, ToolError> {
        let src = SettingsSource {
            config_file: self.config.clone(),
            host: None,
            port: None,
            data_dir: self.data.clone(),
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        let settings = Settings::load(&src, &env)
            .map_err(|e| ToolError::Usage(format!("configuration error: {e}")))?;
        Ok(DataDir::new(settings.data_dir))
    }
}

/// Prints a tool's report on stdout.
fn print(text: &str) -> Result<(), ToolError> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|_| out.flush())
        .map_err(ToolError::output)
}

fn run_log(command: LogCommand) -> Result<(), ToolError> {
    match command {
        LogCommand::Verify {
            data,
            against,
            json,
            progress,
        } => {
            let against = against
                .as_deref()
                .map(tools::checkpoint::Checkpoint::from_arg)
                .transpose()?;
            let outcome =
                tools::verify::verify(&data.resolve()?, against.as_ref(), progress.mode())?;
            if json {
                print(&format!("{}\n", outcome.to_json()))
            } else {
                print(&outcome.to_text())
            }
        }
        LogCommand::Show {
            data,
            since,
            until,
            object,
            user,
            action,
            limit,
            json,
        } => {
            let filter = tools::show::Filter {
                since: since.as_deref().map(tools::time::parse_time).transpose()?,
                until: until.as_deref().map(tools::time::parse_time).transpose()?,
                object: object
                    .as_deref()
                    .map(tools::show::ObjectPattern::parse)
                    .transpose()?,
                users: user,
                actions: action
                    .iter()
                    .map(|a| tools::show::Action::parse(a))
                    .collect::<Result<_, _>>()?,
                limit,
            };
            let data = data.resolve()?;
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            tools::show::show(&data, &filter, json, &mut out).map(|_| ())
        }
        LogCommand::Checkpoint { data, progress } => {
            let cp = tools::verify::checkpoint(&data.resolve()?, progress.mode())?;
            print(&format!("{}\n", cp.to_json()))
        }
        LogCommand::Replay {
            data,
            until,
            until_offset,
            into,
            progress,
        } => {
            let until = Until::from_args(until.as_deref(), until_offset)?;
            let outcome = tools::replay::replay(&data.resolve()?, until, &into, progress.mode())?;
            print(&outcome.to_text())
        }
    }
}

/// Runs a tool and turns its error into a message and an exit status.
fn run_tool(f: impl FnOnce() -> Result<(), ToolError>) -> ExitCode {
    match f() {
        Ok(()) => ExitCode::SUCCESS,
        Err(ToolError::BrokenPipe) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cairn: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The tools print their own reports; the libraries' info lines (replay
    // progress, the store engine) would only be noise there.
    // The store engine's own info lines (journal and table housekeeping)
    // are noise for an operator too; its warnings and errors stay.
    let default_filter = match cli.command {
        Command::Serve { .. } => "info,fjall=warn,lsm_tree=warn",
        _ => "warn",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| default_filter.into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::CreateUser {
            data,
            config,
            ini,
            username,
            password,
        } => {
            let src = SettingsSource {
                config_file: config,
                host: None,
                port: None,
                data_dir: data,
            };
            cairn::plugins::cli::create_user(&src, ini.as_deref(), username, password)
        }
        Command::Serve {
            host,
            port,
            data,
            config,
            ini,
        } => {
            let src = SettingsSource {
                config_file: config,
                host,
                port,
                data_dir: data,
            };
            let env: Vec<(String, String)> = std::env::vars().collect();
            let mut settings = match Settings::load_with_ini(&src, ini.as_deref(), &env) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("cairn: configuration error: {e}");
                    return ExitCode::from(2);
                }
            };
            if let Err(e) = settings.ensure_secrets() {
                eprintln!("cairn: cannot prepare secrets: {e}");
                return ExitCode::from(2);
            }
            // One worker per core this process may run on (the affinity
            // mask, not the machine's core count): extra workers on a
            // pinned core only contend with each other.
            let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(workers)
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("cairn: cannot start the runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match rt.block_on(cairn::serve::run(settings)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("cairn: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Log { command } => run_tool(|| run_log(command)),
        Command::Projections {
            command: ProjectionsCommand::Rebuild { data, progress },
        } => run_tool(|| {
            let outcome = tools::rebuild::rebuild(&data.resolve()?, progress.mode())?;
            print(&outcome.to_text())
        }),
        Command::Snapshot {
            data,
            out,
            progress,
        } => run_tool(|| {
            let outcome = tools::snapshot::snapshot(&data.resolve()?, &out, progress.mode())?;
            print(&outcome.to_text())
        }),
        Command::Restore {
            file,
            into,
            until,
            until_offset,
            progress,
        } => run_tool(|| {
            let until = Until::from_args(until.as_deref(), until_offset)?;
            let outcome = tools::restore::restore(&file, &into, until, progress.mode())?;
            print(&outcome.to_text())
        }),
    }
}
