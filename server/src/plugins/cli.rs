//! `cairn create-user`: Kinto's `create-user` for the accounts plugin.
//! Creates the account, or overwrites its password if it exists (the
//! password reset of the CLI). Prompts for what is not given (the password
//! twice, unechoed only in the sense that it is read from stdin as is).
//!
//! It writes through the log like the server, so the server must not be
//! running on the same data directory (the log's `LOCK` says so).
//! Exit statuses are Kinto's: 51 read-only, 52 accounts plugin not
//! included, 53 aborted (end of input); 2 for usage/configuration errors.

use std::io::BufRead;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use eventlog::{Log, LogOptions};
use projections::Projections;

use crate::plugins::accounts::{hash_password_blocking, is_valid_account_id, upsert_op};
use crate::sequencer::Sequencer;
use crate::serve::{LOG_DIR, PROJECTIONS_DIR};
use crate::settings::{plugin, Settings, SettingsSource};

/// Runs `create-user`; messages go to stderr (never the password).
pub fn create_user(
    src: &SettingsSource,
    ini: Option<&Path>,
    username: Option<String>,
    password: Option<String>,
) -> ExitCode {
    let env: Vec<(String, String)> = std::env::vars().collect();
    let settings = match Settings::load_with_ini(src, ini, &env) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cairn: configuration error: {e}");
            return ExitCode::from(2);
        }
    };
    if settings.readonly {
        eprintln!("cairn: the server is configured read-only (readonly = true)");
        return ExitCode::from(51);
    }
    if !settings.includes(plugin::ACCOUNTS) {
        eprintln!("cairn: the accounts plugin is not included (includes = kinto.plugins.accounts)");
        return ExitCode::from(52);
    }
    let stdin = std::io::stdin();
    let mut lines = stdin.lock().lines();
    let mut ask = |prompt: &str| -> Option<String> {
        eprint!("{prompt}");
        match lines.next() {
            Some(Ok(line)) => Some(line.trim_end_matches(['\r', '\n']).to_owned()),
            _ => None,
        }
    };
    let username = match username {
        Some(u) => u,
        None => match ask("Username: ") {
            Some(u) => u,
            None => return aborted(),
        },
    };
    if !is_valid_account_id(&username) {
        eprintln!("cairn: {username:?} is not a valid account id ([a-zA-Z0-9][+.@a-zA-Z0-9_-]*)");
        return ExitCode::from(2);
    }
    let password = match password {
        Some(p) => p,
        None => {
            let Some(first) = ask("Password: ") else {
                return aborted();
            };
            let Some(again) = ask("Password (again): ") else {
                return aborted();
            };
            if first != again {
                eprintln!("cairn: the passwords do not match");
                return ExitCode::from(2);
            }
            first
        }
    };
    if password.is_empty() {
        eprintln!("cairn: the password must not be empty");
        return ExitCode::from(2);
    }
    let hash = match hash_password_blocking(&password) {
        Ok(h) => h,
        Err(e) => {
            eprintln!("cairn: cannot hash the password: {e}");
            return ExitCode::from(2);
        }
    };
    match write_account(&settings, username.clone(), hash) {
        Ok(()) => {
            eprintln!("cairn: account {username:?} written");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cairn: {e}");
            ExitCode::FAILURE
        }
    }
}

fn aborted() -> ExitCode {
    eprintln!("cairn: aborted");
    ExitCode::from(53)
}

/// Opens the data directory as the server does and sequences one write.
fn write_account(settings: &Settings, id: String, hash: String) -> Result<(), String> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| e.to_string())?;
    let log = Log::open(&settings.data_dir.join(LOG_DIR), LogOptions::default())
        .map_err(|e| format!("log: {e} (is the server running on this data directory?)"))?;
    let reader = log.reader();
    let projections = Arc::new(
        Projections::open(&settings.data_dir.join(PROJECTIONS_DIR), &reader)
            .map_err(|e| format!("projections: {e}"))?,
    );
    let (sequencer, thread) = Sequencer::start(log, projections);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let result = rt.block_on(sequencer.submit(
        format!("cli-{}", uuid::Uuid::new_v4()),
        None,
        Box::new(upsert_op(id, hash)),
    ));
    drop(sequencer);
    let _ = thread.join();
    result.map(|_| ()).map_err(|e| e.to_string())
}
