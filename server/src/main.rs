//! The `cairn` command line: one binary for the daemon and its tools.

use std::path::PathBuf;
use std::process::ExitCode;

use cairn::settings::{Settings, SettingsSource};
use clap::{Parser, Subcommand};

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
    },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("CAIRN_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve {
            host,
            port,
            data,
            config,
        } => {
            let src = SettingsSource {
                config_file: config,
                host,
                port,
                data_dir: data,
            };
            let env: Vec<(String, String)> = std::env::vars().collect();
            let mut settings = match Settings::load(&src, &env) {
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
            let rt = match tokio::runtime::Builder::new_multi_thread()
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
    }
}
