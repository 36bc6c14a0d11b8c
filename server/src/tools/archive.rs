//! The snapshot file: a plain POSIX tar (GNU long names), so that standard
//! tools can list and extract it, holding, in this order:
//!
//! ```text
//! log/{base:020}.seg   the log segments, in offset order; the last one cut
//!                      after the snapshot's last record (no seal, no tail)
//! secrets.json         the generated HMAC secrets, when the server has one
//!                      (user ids and personal bucket ids depend on them)
//! attachments/…        the attachments directory, when present
//! MANIFEST.json        last: format, version, the log head (offset, ts,
//!                      chain hash), and the length and blake3 of every file
//! ```
//!
//! The manifest is written last because the file hashes are known only
//! then; a snapshot cut short therefore has no manifest and is refused as
//! truncated. Extracted with `tar -x`, the `log/` directory is a valid log
//! that `cairn serve` opens (its projections are rebuilt at start).
//!
//! Projections are not in the archive: they are rebuilt from the log on
//! restore (eventlog-notes R7, v1).

use std::path::{Path, PathBuf};

use eventlog::segment::parse_segment_name;
use eventlog::Head;
use serde::{Deserialize, Serialize};

use super::checkpoint::parse_hash;
use super::ToolError;
use super::ATTACHMENTS_DIR;
use crate::settings::SECRETS_FILE;

/// The manifest's name (the archive's last entry).
pub const MANIFEST: &str = "MANIFEST.json";
/// `format` in the manifest.
pub const FORMAT: &str = "cairn-snapshot";
/// `version` in the manifest.
pub const VERSION: u32 = 1;

/// The manifest (JSON).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: String,
    pub version: u32,
    pub created_ms: u64,
    /// `created_ms` as RFC 3339, for people.
    pub created: String,
    /// The data directory it was taken from.
    pub source: String,
    pub cairn_version: String,
    /// The last record in the snapshot.
    pub head: ManifestHead,
    pub first_ts_ms: Option<u64>,
    pub segments: usize,
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestHead {
    pub offset: u64,
    pub ts_ms: u64,
    /// Hex chain head `h[offset]`.
    pub hash: String,
}

impl From<Head> for ManifestHead {
    fn from(h: Head) -> ManifestHead {
        ManifestHead {
            offset: h.offset,
            ts_ms: h.ts_ms,
            hash: h.hash.to_hex(),
        }
    }
}

impl ManifestHead {
    pub fn matches(&self, h: &Head) -> bool {
        self.offset == h.offset
            && self.ts_ms == h.ts_ms
            && parse_hash(&self.hash).is_some_and(|x| x == h.hash)
    }
}

/// One file of the archive.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub path: String,
    pub len: u64,
    /// Hex blake3 of the content.
    pub blake3: String,
}

/// What an archive entry is, from its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EntryKind {
    Segment(String),
    Secrets,
    Attachment(PathBuf),
    Manifest,
}

/// Classifies an entry path; anything else is refused (an archive is data,
/// never a place to write arbitrary paths from).
pub fn classify(path: &str) -> Result<EntryKind, String> {
    if path == MANIFEST {
        return Ok(EntryKind::Manifest);
    }
    if path == SECRETS_FILE {
        return Ok(EntryKind::Secrets);
    }
    if let Some(name) = path.strip_prefix("log/") {
        if parse_segment_name(name).is_some() {
            return Ok(EntryKind::Segment(name.to_string()));
        }
    }
    if let Some(rel) = path.strip_prefix(&format!("{ATTACHMENTS_DIR}/")) {
        let rel = Path::new(rel);
        let normal = rel
            .components()
            .all(|c| matches!(c, std::path::Component::Normal(_)));
        if normal && !rel.as_os_str().is_empty() {
            return Ok(EntryKind::Attachment(rel.to_path_buf()));
        }
    }
    Err(format!("unexpected entry {path:?}"))
}

/// Regular files under `dir`, recursively, sorted, as (relative, absolute)
/// paths; an absent directory has none. Symlinks and other special files
/// are skipped (with a warning): they are not data.
pub fn list_files(dir: &Path) -> Result<Vec<(PathBuf, PathBuf)>, ToolError> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![PathBuf::new()];
    while let Some(rel) = stack.pop() {
        let abs = dir.join(&rel);
        let rd = std::fs::read_dir(&abs).map_err(ToolError::at("listing", &abs))?;
        for entry in rd {
            let entry = entry.map_err(ToolError::at("listing", &abs))?;
            let kind = entry
                .file_type()
                .map_err(ToolError::at("reading", &entry.path()))?;
            let r = rel.join(entry.file_name());
            if kind.is_dir() {
                stack.push(r);
            } else if kind.is_file() {
                out.push((r, entry.path()));
            } else {
                tracing::warn!(path = %entry.path().display(), "skipping a file that is not a regular file");
            }
        }
    }
    out.sort();
    Ok(out)
}

/// Hex blake3 of bytes.
pub fn blake3_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_paths() {
        assert_eq!(classify("MANIFEST.json"), Ok(EntryKind::Manifest));
        assert_eq!(classify("secrets.json"), Ok(EntryKind::Secrets));
        assert_eq!(
            classify("log/00000000000000000001.seg"),
            Ok(EntryKind::Segment("00000000000000000001.seg".into()))
        );
        assert_eq!(
            classify("attachments/a/b.png"),
            Ok(EntryKind::Attachment("a/b.png".into()))
        );
        for bad in [
            "log/LOCK",
            "log/00000000000000000001.seg.torn-1",
            "attachments/../x",
            "attachments/",
            "/etc/passwd",
            "projections/db",
        ] {
            assert!(classify(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lists_nested_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("a/b")).unwrap();
        std::fs::write(dir.path().join("a/b/c"), b"1").unwrap();
        std::fs::write(dir.path().join("z"), b"2").unwrap();
        let files: Vec<_> = list_files(dir.path())
            .unwrap()
            .into_iter()
            .map(|(r, _)| r)
            .collect();
        assert_eq!(files, [PathBuf::from("a/b/c"), PathBuf::from("z")]);
        assert!(list_files(&dir.path().join("none")).unwrap().is_empty());
    }
}
