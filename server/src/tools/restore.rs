//! `cairn restore FILE --into NEW_DIR [--until TIME]`.
//!
//! Two passes over the archive. The first writes nothing: it checks that
//! every entry is one a snapshot holds, that the manifest is there (it is
//! the last entry, so a file cut short has none), that every file has the
//! length and blake3 the manifest lists and no file is missing or extra,
//! and that the log's whole chain verifies and ends at the manifest's head.
//! Only then does the second pass create the target (refused if not empty)
//! and build it: log re-appended up to `--until`, projections rebuilt as it
//! goes, secrets and attachments written. Each entry is hashed again in the
//! second pass, in case the file changed in between; a failed build
//! removes what it wrote.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use eventlog::Head;

use super::archive::{blake3_hex, classify, EntryKind, FileEntry, Manifest, FORMAT, VERSION};
use super::build::NewDataDir;
use super::progress::{Progress, ProgressMode, Unit};
use super::time::format_ms;
use super::walk::{RecordRef, Rules, Visitor, Walker};
use super::{check_empty_target, ToolError, Until, ATTACHMENTS_DIR};
use crate::settings::SECRETS_FILE;

/// A restored data directory.
#[derive(Debug, Clone)]
pub struct RestoreOutcome {
    pub into: PathBuf,
    pub manifest: Manifest,
    /// Head of the restored log.
    pub head: Head,
    pub events: u64,
    pub secrets: bool,
    pub attachments: usize,
    pub elapsed: Duration,
}

impl RestoreOutcome {
    pub fn to_text(&self) -> String {
        let m = &self.manifest;
        format!(
            "restored:   {}\nsnapshot:   taken {} from {}, head offset {}\nrestored head: offset {} {}{}\nevents:     {} applied to the projections\nsecrets:    {}\nattachments: {}\ntime:       {:.2} s\nserve it with: cairn serve --data {}\n",
            self.into.display(),
            m.created,
            m.source,
            m.head.offset,
            self.head.offset,
            self.head.hash,
            if self.head.offset > 0 { format!(" (last record at {})", format_ms(self.head.ts_ms)) } else { String::new() },
            self.events,
            if self.secrets { "restored" } else { "none in the snapshot" },
            self.attachments,
            self.elapsed.as_secs_f64(),
            self.into.display(),
        )
    }
}

/// What [`for_each_entry`] calls for each entry: its kind, path and bytes.
type EntryFn<'a> = dyn FnMut(EntryKind, &str, Vec<u8>) -> Result<(), ToolError> + 'a;

/// Reads every entry of the archive in order, refusing what a snapshot
/// never holds; `f` gets each entry whole.
fn for_each_entry(
    file: &Path,
    progress: &mut Progress,
    f: &mut EntryFn<'_>,
) -> Result<(), ToolError> {
    let bad = |reason: String| ToolError::bad_snapshot(file, reason);
    let handle = File::open(file).map_err(ToolError::at("opening", file))?;
    let mut archive = tar::Archive::new(BufReader::with_capacity(1 << 20, handle));
    let entries = archive
        .entries()
        .map_err(|e| bad(format!("not a tar archive: {e}")))?;
    let mut seen = std::collections::HashSet::new();
    let mut after_manifest = false;
    for entry in entries {
        let mut entry = entry.map_err(|e| bad(format!("archive damaged or truncated: {e}")))?;
        let path = entry
            .path()
            .map_err(|e| bad(format!("entry with a bad path: {e}")))?
            .to_string_lossy()
            .into_owned();
        if after_manifest {
            return Err(bad(format!("entry {path:?} after the manifest")));
        }
        if entry.header().entry_type() != tar::EntryType::Regular {
            return Err(bad(format!("entry {path:?} is not a regular file")));
        }
        let kind = classify(&path).map_err(bad)?;
        if !seen.insert(path.clone()) {
            return Err(bad(format!("entry {path:?} appears twice")));
        }
        let size = entry.size();
        let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0).min(1 << 30));
        entry
            .read_to_end(&mut bytes)
            .map_err(|e| bad(format!("reading {path:?}: {e} (truncated?)")))?;
        if bytes.len() as u64 != size {
            return Err(bad(format!(
                "entry {path:?} has {} of its {size} bytes: the file is truncated",
                bytes.len()
            )));
        }
        progress.inc(512 + size);
        after_manifest = kind == EntryKind::Manifest;
        f(kind, &path, bytes)?;
    }
    if !after_manifest {
        return Err(bad(
            "no MANIFEST.json at the end: the file is truncated or is not a Cairn snapshot".into(),
        ));
    }
    Ok(())
}

/// Turns damage found in the archive's log into a snapshot error.
fn in_archive(file: &Path) -> impl Fn(ToolError) -> ToolError + '_ {
    move |e| match e {
        ToolError::Damaged {
            segment,
            offset,
            reason,
        } => ToolError::bad_snapshot(
            file,
            format!("its log is damaged at offset {offset} (segment {segment}): {reason}"),
        ),
        other => other,
    }
}

/// Remembers the last record within `until`; feeds the build in pass 2.
struct Cut<'a> {
    until: Until,
    last: Head,
    past: bool,
    /// Pass 2 only.
    build: Option<&'a mut NewDataDir>,
}

impl Visitor for Cut<'_> {
    fn record(&mut self, r: &RecordRef<'_>) -> Result<(), ToolError> {
        if self.past || !self.until.includes(r.offset, r.ts_ms) {
            self.past = true;
            return Ok(());
        }
        self.last = r.head();
        if let Some(b) = self.build.as_deref_mut() {
            b.push(r)?;
        }
        Ok(())
    }
    fn wants_more(&self) -> bool {
        // Pass 1 checks the whole chain even past the cut.
        self.build.is_none() || !self.past
    }
}

/// What pass 1 established.
#[derive(Debug)]
struct Checked {
    manifest: Manifest,
    /// The head the restored log will have.
    cut: Head,
}

/// Pass 1: everything is checked, nothing is written.
fn check(file: &Path, until: Until, mode: ProgressMode) -> Result<Checked, ToolError> {
    let bad = |reason: String| ToolError::bad_snapshot(file, reason);
    let size = std::fs::metadata(file)
        .map_err(ToolError::at("opening", file))?
        .len();
    let mut progress = Progress::new(mode, "check", size, Unit::Bytes);
    let mut walker = Walker::new(Rules::ARCHIVE);
    let mut cut = Cut {
        until,
        last: walker.head(),
        past: false,
        build: None,
    };
    let mut files: Vec<FileEntry> = Vec::new();
    let mut manifest: Option<Manifest> = None;
    let r = for_each_entry(file, &mut progress, &mut |kind, path, bytes| {
        match kind {
            EntryKind::Manifest => {
                let m: Manifest = serde_json::from_slice(&bytes)
                    .map_err(|e| bad(format!("MANIFEST.json does not parse: {e}")))?;
                manifest = Some(m);
            }
            kind => {
                files.push(FileEntry {
                    path: path.to_string(),
                    len: bytes.len() as u64,
                    blake3: blake3_hex(&bytes),
                });
                if let EntryKind::Segment(name) = kind {
                    walker
                        .feed(&name, &bytes, &mut cut)
                        .map_err(in_archive(file))?;
                }
            }
        }
        Ok(())
    });
    if let Err(e) = r {
        progress.abandon();
        return Err(e);
    }
    let manifest = manifest.ok_or_else(|| bad("no manifest".into()))?;
    if manifest.format != FORMAT || manifest.version != VERSION {
        return Err(bad(format!(
            "format {:?} version {} (this build reads {FORMAT:?} version {VERSION})",
            manifest.format, manifest.version
        )));
    }
    let listed: HashMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    for f in &files {
        match listed.get(f.path.as_str()) {
            None => return Err(bad(format!("{} is not in the manifest", f.path))),
            Some(m) if m.len != f.len || m.blake3 != f.blake3 => {
                return Err(bad(format!(
                    "{} has {} bytes and blake3 {}, the manifest says {} bytes and {}",
                    f.path, f.len, f.blake3, m.len, m.blake3
                )))
            }
            Some(_) => {}
        }
    }
    if files.len() != manifest.files.len() {
        let present: std::collections::HashSet<&str> =
            files.iter().map(|f| f.path.as_str()).collect();
        let missing: Vec<&str> = manifest
            .files
            .iter()
            .map(|f| f.path.as_str())
            .filter(|p| !present.contains(p))
            .collect();
        return Err(bad(format!("files missing: {}", missing.join(", "))));
    }
    let report = walker.finish().map_err(in_archive(file))?;
    if !manifest.head.matches(&report.head) {
        return Err(bad(format!(
            "the log ends at offset {} with chain head {}, the manifest says offset {} and {}",
            report.head.offset, report.head.hash, manifest.head.offset, manifest.head.hash
        )));
    }
    progress.finish("checked");
    Ok(Checked {
        manifest,
        cut: cut.last,
    })
}

/// Restores `file` into `into` (new or empty), up to `until`.
pub fn restore(
    file: &Path,
    into: &Path,
    until: Until,
    mode: ProgressMode,
) -> Result<RestoreOutcome, ToolError> {
    let started = Instant::now();
    check_empty_target(into)?;
    let checked = check(file, until, mode)?;
    let expected: HashMap<String, FileEntry> = checked
        .manifest
        .files
        .iter()
        .map(|f| (f.path.clone(), f.clone()))
        .collect();
    let mut build = NewDataDir::create(into)?;
    let size = std::fs::metadata(file)
        .map_err(ToolError::at("opening", file))?
        .len();
    let mut progress = Progress::new(mode, "restore", size, Unit::Bytes);
    let mut walker = Walker::new(Rules::ARCHIVE);
    let (mut secrets, mut attachments) = (false, 0usize);
    let mut cut = Cut {
        until,
        last: walker.head(),
        past: false,
        build: Some(&mut build),
    };
    let r = for_each_entry(file, &mut progress, &mut |kind, path, bytes| {
        if kind != EntryKind::Manifest {
            let same = expected
                .get(path)
                .is_some_and(|f| f.len == bytes.len() as u64 && f.blake3 == blake3_hex(&bytes));
            if !same {
                return Err(ToolError::bad_snapshot(
                    file,
                    format!("{path} changed since it was checked"),
                ));
            }
        }
        match kind {
            EntryKind::Segment(name) => walker
                .feed(&name, &bytes, &mut cut)
                .map_err(in_archive(file)),
            EntryKind::Secrets => {
                secrets = true;
                cut.build.as_deref().map_or(Ok(()), |b| {
                    b.write_file(Path::new(SECRETS_FILE), &bytes, true)
                })
            }
            EntryKind::Attachment(rel) => {
                attachments += 1;
                let rel = Path::new(ATTACHMENTS_DIR).join(rel);
                cut.build
                    .as_deref()
                    .map_or(Ok(()), |b| b.write_file(&rel, &bytes, false))
            }
            EntryKind::Manifest => Ok(()),
        }
    });
    if let Err(e) = r {
        progress.abandon();
        return Err(e);
    }
    progress.finish("log restored");
    let (head, events) = build.finish(mode)?;
    if head != checked.cut {
        return Err(ToolError::bad_snapshot(
            file,
            format!(
                "restored up to offset {} but the check pass found {}",
                head.offset, checked.cut.offset
            ),
        ));
    }
    Ok(RestoreOutcome {
        into: into.to_path_buf(),
        manifest: checked.manifest,
        head,
        events,
        secrets,
        attachments,
        elapsed: started.elapsed(),
    })
}
