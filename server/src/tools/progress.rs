//! Progress of long runs (verify, replay, snapshot, restore, rebuild) on
//! stderr: a bar when stderr is a terminal, otherwise a plain line every
//! few seconds (cron mails and CI logs stay readable), or nothing with
//! `--quiet`. Results go to stdout, so `> report.txt` never captures bars.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};

/// How to show progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// A bar on a terminal, plain lines otherwise.
    Auto,
    /// Plain lines even on a terminal.
    Plain,
    Quiet,
}

/// What is being counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Bytes,
    Records,
}

/// Plain lines are at least this far apart.
const PLAIN_EVERY: Duration = Duration::from_secs(2);

/// One task's progress.
#[derive(Debug)]
pub struct Progress {
    label: String,
    unit: Unit,
    total: u64,
    done: u64,
    started: Instant,
    last_line: Instant,
    out: Out,
}

#[derive(Debug)]
enum Out {
    Bar(ProgressBar),
    Plain,
    Quiet,
}

impl Progress {
    /// Starts a task of `total` units (0 if unknown).
    pub fn new(mode: ProgressMode, label: &str, total: u64, unit: Unit) -> Progress {
        let out = match mode {
            ProgressMode::Quiet => Out::Quiet,
            ProgressMode::Plain => Out::Plain,
            ProgressMode::Auto if std::io::stderr().is_terminal() => {
                let bar = ProgressBar::new(total);
                let template = match unit {
                    Unit::Bytes => {
                        "{prefix:>9} [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
                    }
                    Unit::Records => {
                        "{prefix:>9} [{bar:40}] {human_pos}/{human_len} records {per_sec} eta {eta}"
                    }
                };
                if let Ok(style) = ProgressStyle::with_template(template) {
                    bar.set_style(style.progress_chars("=> "));
                }
                bar.set_prefix(label.to_string());
                Out::Bar(bar)
            }
            ProgressMode::Auto => Out::Plain,
        };
        let now = Instant::now();
        Progress {
            label: label.to_string(),
            unit,
            total,
            done: 0,
            started: now,
            last_line: now,
            out,
        }
    }

    pub fn set_total(&mut self, total: u64) {
        self.total = total;
        if let Out::Bar(bar) = &self.out {
            bar.set_length(total);
        }
    }

    /// Adds `n` units done.
    pub fn inc(&mut self, n: u64) {
        self.done += n;
        match &self.out {
            Out::Bar(bar) => bar.inc(n),
            Out::Plain if self.last_line.elapsed() >= PLAIN_EVERY => {
                self.last_line = Instant::now();
                let line = format!("{}: {}", self.label, self.status());
                eprintln_quiet(&line);
            }
            _ => {}
        }
    }

    /// Ends the task with a summary line (kept on screen).
    pub fn finish(&mut self, what: &str) {
        let line = format!(
            "{}: {what} in {:.2} s ({})",
            self.label,
            self.started.elapsed().as_secs_f64(),
            self.rate()
        );
        match &self.out {
            Out::Bar(bar) => bar.finish_and_clear(),
            Out::Plain => {}
            Out::Quiet => return,
        }
        eprintln_quiet(&line);
    }

    /// Removes the bar without a summary (on error).
    pub fn abandon(&mut self) {
        if let Out::Bar(bar) = &self.out {
            bar.abandon();
        }
    }

    fn status(&self) -> String {
        let pct = self
            .done
            .saturating_mul(100)
            .checked_div(self.total)
            .map(|p| format!("{p:>3}% "))
            .unwrap_or_default();
        let amount = match self.unit {
            Unit::Bytes => format!("{} of {}", human_bytes(self.done), human_bytes(self.total)),
            Unit::Records => format!("{} of {} records", self.done, self.total),
        };
        format!("{pct}{amount}, {}", self.rate())
    }

    fn rate(&self) -> String {
        let secs = self.started.elapsed().as_secs_f64().max(1e-6);
        let per_s = self.done as f64 / secs;
        match self.unit {
            Unit::Bytes => format!("{}/s", human_bytes(per_s as u64)),
            Unit::Records => format!("{per_s:.0} records/s"),
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Out::Bar(bar) = &self.out {
            if !bar.is_finished() {
                bar.abandon();
            }
        }
    }
}

/// Progress is best effort: a closed stderr must not fail the task.
fn eprintln_quiet(line: &str) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "{line}");
}

/// `312.4 MB` (decimal units, as disks and `MB/s` figures are quoted).
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "kB", "MB", "GB", "TB"];
    let mut v = n as f64;
    let mut i = 0;
    while v >= 1000.0 && i + 1 < UNITS.len() {
        v /= 1000.0;
        i += 1;
    }
    if i == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_reads_well() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(312_400_000), "312.4 MB");
        assert_eq!(human_bytes(2_000_000_000_000), "2.0 TB");
    }

    #[test]
    fn plain_status_counts() {
        let mut p = Progress::new(ProgressMode::Quiet, "verify", 200, Unit::Bytes);
        p.inc(50);
        assert!(
            p.status().starts_with(" 25% 50 B of 200 B"),
            "{}",
            p.status()
        );
        let mut r = Progress::new(ProgressMode::Quiet, "restore", 0, Unit::Records);
        r.inc(7);
        assert!(r.status().starts_with("7 of 0 records"), "{}", r.status());
    }
}
