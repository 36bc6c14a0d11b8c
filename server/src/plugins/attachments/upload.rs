//! An upload: the `multipart/form-data` body of `POST …/attachment`, the
//! rules a file must pass (extension, size), and the metadata Kinto
//! records (`filename`, `location`, `hash`, `mimetype`, `size`, and
//! `original` when gzipped).
//!
//! Checks run in kinto-attachment's order, so that a body with several
//! problems gets the same error: content type, `attachment` part present,
//! filename, size, extension, then the `data` / `permissions` parts, then
//! unknown parts. Unlike kinto-attachment, all of them run before the file
//! is written (kinto-attachment stores the file first and leaves it behind
//! when a later check fails).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;

use axum::body::Body;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::files::FileHash;
use super::AttachmentError;
use crate::errors::{ApiError, Location};
use crate::settings::AttachmentSettings;

/// The form part holding the file.
pub const FILE_FIELD: &str = "attachment";

/// kinto-attachment's extension groups (`attachment.extensions`).
const GROUPS: &[(&str, &str)] = &[
    (
        "documents",
        "pdf rtf odf ods gnumeric abw doc docx xls xlsx",
    ),
    ("text", "txt"),
    ("images", "jpg jpe jpeg png gif svg bmp tiff"),
    ("audio", "wav mp3 aac ogg oga flac"),
    ("video", "mpeg 3gp avi divx dvr flv mp4 wmv"),
    ("data", "csv ini json plist xml yaml yml"),
    ("scripts", "js php pl py rb sh"),
    ("archives", "gz bz2 zip tar tgz txz 7z"),
    ("executables", "so exe dll"),
    ("default", "documents+text+images+data"),
    ("any", ""),
];

/// kinto-attachment's built-in mimetype overrides, by extension.
const DEFAULT_MIMETYPES: &[(&str, &str)] = &[
    (".pem", "application/x-pem-file"),
    (".geojson", "application/geojson"),
];

/// The allowed extensions (lower case, no dot); empty = any.
pub fn resolve_extensions(setting: Option<&[String]>) -> BTreeSet<String> {
    let joined = match setting {
        Some(words) => words.join(" "),
        None => "default".to_owned(),
    };
    let mut out = BTreeSet::new();
    let mut todo: Vec<String> = joined
        .split('+')
        .flat_map(|g| g.split_whitespace())
        .map(str::to_owned)
        .collect();
    while let Some(word) = todo.pop() {
        match GROUPS.iter().find(|(name, _)| *name == word) {
            Some((_, members)) => todo.extend(
                members
                    .split(['+', ' '])
                    .filter(|m| !m.is_empty())
                    .map(str::to_owned),
            ),
            None => {
                out.insert(word.trim_start_matches('.').to_lowercase());
            }
        }
    }
    out
}

/// `attachment.mimetypes` (`.ext:type;.ext:type`) over the built-in ones.
pub fn mimetype_overrides(setting: Option<&str>) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = DEFAULT_MIMETYPES
        .iter()
        .map(|(e, t)| ((*e).to_owned(), (*t).to_owned()))
        .collect();
    for pair in setting.unwrap_or("").split(';') {
        if let Some((ext, ty)) = pair.split_once(':') {
            out.insert(ext.trim().to_owned(), ty.trim().to_owned());
        }
    }
    out
}

/// The upload rules for one collection.
#[derive(Debug, Clone)]
pub struct Rules {
    pub extensions: BTreeSet<String>,
    pub mimetypes: BTreeMap<String, String>,
    /// Largest file, in bytes (`None` or 0: no limit).
    pub max_size: Option<u64>,
    pub gzipped: bool,
    /// `location` prefix, placeholders filled.
    pub folder: Option<String>,
}

impl Rules {
    pub fn new(s: &AttachmentSettings, bid: &str, cid: &str, rid: &str) -> Rules {
        let bucket_uri = format!("/buckets/{bid}");
        let collection_uri = format!("{bucket_uri}/collections/{cid}");
        let max_size = [collection_uri.as_str(), bucket_uri.as_str()]
            .iter()
            .find_map(|uri| s.resources.get(*uri).and_then(|o| o.max_size_bytes))
            .or(s.max_size_bytes);
        let folder = s
            .folder
            .as_deref()
            .map(|pattern| {
                pattern
                    .replace("{bucket_id}", bid)
                    .replace("{collection_id}", cid)
                    .replace("{id}", rid)
                    .trim_matches('/')
                    .to_owned()
            })
            .filter(|f| !f.is_empty());
        Rules {
            extensions: resolve_extensions(s.extensions.as_deref()),
            mimetypes: mimetype_overrides(s.mimetypes.as_deref()),
            max_size,
            gzipped: s.gzipped,
            folder,
        }
    }
}

/// One part of the form.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub filename: Option<String>,
    pub content_type: Option<String>,
    pub bytes: Bytes,
}

/// Reads the parts of a `multipart/form-data` body (already in memory:
/// the app reads bodies whole, up to its size limit).
pub async fn parse(content_type: Option<&str>, body: Bytes) -> Result<Vec<Part>, AttachmentError> {
    let ct = content_type.unwrap_or("");
    if !ct.contains("multipart/form-data") {
        return Err(AttachmentError::bad_request(
            107,
            "Content-Type should be multipart/form-data",
        ));
    }
    let malformed = |e: multer::Error| {
        AttachmentError::bad_request(107, format!("Invalid multipart/form-data body: {e}"))
    };
    let boundary = multer::parse_boundary(ct).map_err(malformed)?;
    let mut form = multer::Multipart::new(Body::from(body).into_data_stream(), boundary);
    let mut parts = Vec::new();
    while let Some(field) = form.next_field().await.map_err(malformed)? {
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.file_name().map(str::to_owned);
        let content_type = field.content_type().map(|m| m.essence_str().to_owned());
        let bytes = field.bytes().await.map_err(malformed)?;
        parts.push(Part {
            name,
            filename,
            content_type,
            bytes,
        });
    }
    Ok(parts)
}

/// A checked upload: the file and the record fields sent with it.
#[derive(Debug, Clone)]
pub struct Upload {
    pub filename: String,
    /// The part's `Content-Type`, or the built-in / configured override.
    pub mimetype: String,
    pub bytes: Bytes,
    /// The `data` part, decoded.
    pub data: Option<Value>,
    /// The `permissions` part, decoded.
    pub permissions: Option<Value>,
}

/// `.ext` of a file name, as Python's `os.path.splitext` (the dot
/// included; `""` when none; a leading dot alone is no extension).
fn extension(filename: &str) -> &str {
    let base = filename.rsplit(['/', '\\']).next().unwrap_or(filename);
    let stem_len = base.trim_start_matches('.').len();
    let leading = base.len() - stem_len;
    match base[leading..].rfind('.') {
        Some(i) => &base[leading + i..],
        None => "",
    }
}

fn field_error(message: String) -> AttachmentError {
    AttachmentError::bad_request(109, message)
}

/// Checks the parts against the rules (kinto-attachment's order).
pub fn check(mut parts: Vec<Part>, rules: &Rules) -> Result<Upload, AttachmentError> {
    // The last `attachment` part wins (a form's `get`); the others are
    // record fields.
    let file = match parts.iter().rposition(|p| p.name == FILE_FIELD) {
        Some(i) => parts.remove(i),
        None => return Err(AttachmentError::bad_request(109, "Attachment missing.")),
    };
    parts.retain(|p| p.name != FILE_FIELD);
    let Some(filename) = file.filename.filter(|f| !f.is_empty()) else {
        return Err(ApiError::invalid(Location::Body, None, "Filename is required.").into());
    };
    let size = file.bytes.len() as u64;
    if let Some(max) = rules.max_size.filter(|m| *m > 0) {
        if size > max {
            return Err(ApiError::invalid(
                Location::Body,
                None,
                format!("File size ({size} bytes) exceeds the limit ({max} bytes)."),
            )
            .into());
        }
    }
    let ext = extension(&filename);
    let bare = ext.trim_start_matches('.').to_lowercase();
    if !rules.extensions.is_empty() && !rules.extensions.contains(&bare) {
        return Err(
            ApiError::invalid(Location::Body, None, "File extension is not allowed.").into(),
        );
    }
    let mimetype = rules
        .mimetypes
        .get(ext)
        .cloned()
        .or(file.content_type)
        .or_else(|| mime_guess::from_ext(&bare).first_raw().map(str::to_owned))
        .unwrap_or_else(|| "application/octet-stream".to_owned());

    let mut fields: Vec<(String, Option<Value>)> = Vec::new();
    for name in ["data", "permissions"] {
        // The last part of that name, as a form's `get` gives it.
        let Some(part) = parts.iter().rev().find(|p| p.name == name) else {
            fields.push((name.to_owned(), None));
            continue;
        };
        if part.filename.is_some() {
            return Err(field_error(format!(
                "body: '{name}' field should be passed as form data, not files"
            )));
        }
        let value: Value = serde_json::from_slice(&part.bytes)
            .map_err(|e| field_error(format!("body: {name} is not valid JSON ({e})")))?;
        fields.push((name.to_owned(), Some(value)));
    }
    if let Some(other) = parts
        .iter()
        .find(|p| p.name != "data" && p.name != "permissions")
    {
        return Err(field_error(format!(
            "body: '{}' not in ('data', 'permissions')",
            other.name
        )));
    }
    let mut fields = fields.into_iter().map(|(_, v)| v);
    Ok(Upload {
        filename,
        mimetype,
        bytes: file.bytes,
        data: fields.next().flatten(),
        permissions: fields.next().flatten(),
    })
}

/// What to store and what to record for an upload.
#[derive(Debug, Clone)]
pub struct Prepared {
    /// The bytes stored (gzipped when the option is on).
    pub stored: Vec<u8>,
    pub file: FileHash,
    /// The record's `attachment` (and the POST's answer).
    pub meta: Map<String, Value>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Hashes (and gzips) the file and builds its metadata. CPU-bound: call
/// on a blocking thread.
pub fn prepare(upload: &Upload, rules: &Rules) -> std::io::Result<Prepared> {
    let mut filename = upload.filename.clone();
    let mut mimetype = upload.mimetype.clone();
    let mut stored = upload.bytes.to_vec();
    let mut original = None;
    if rules.gzipped {
        original = Some(json!({
            "filename": filename,
            "hash": sha256_hex(&stored),
            "mimetype": mimetype,
            "size": stored.len(),
        }));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&stored)?;
        stored = gz.finish()?;
        filename.push_str(".gz");
        mimetype = "application/x-gzip".to_owned();
    }
    let file = FileHash::of(&stored);
    // The name in `location`: the content's blake3 and the lower-cased
    // extension (kinto-attachment: a random UUID and the extension).
    let ext: String = extension(&filename)
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .take(16)
        .collect();
    let ext = if ext.len() > 1 { ext } else { String::new() };
    let name = format!("{}{ext}", file.hex());
    let location = match &rules.folder {
        Some(folder) => format!("{folder}/{name}"),
        None => name,
    };
    let mut meta = Map::new();
    meta.insert("filename".into(), json!(filename));
    meta.insert("location".into(), json!(location));
    meta.insert("hash".into(), json!(sha256_hex(&stored)));
    meta.insert("mimetype".into(), json!(mimetype));
    meta.insert("size".into(), json!(stored.len()));
    if let Some(o) = original {
        meta.insert("original".into(), o);
    }
    Ok(Prepared { stored, file, meta })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> Rules {
        Rules::new(&AttachmentSettings::default(), "b", "c", "r")
    }

    fn part(name: &str, filename: Option<&str>, bytes: &[u8]) -> Part {
        Part {
            name: name.into(),
            filename: filename.map(str::to_owned),
            content_type: None,
            bytes: Bytes::copy_from_slice(bytes),
        }
    }

    fn message(e: AttachmentError) -> (u16, String) {
        let (status, body) = e.status_and_body();
        (
            status.as_u16(),
            body["message"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn extension_groups() {
        let default = resolve_extensions(None);
        for e in ["pdf", "txt", "png", "json", "csv", "svg"] {
            assert!(default.contains(e), "{e}");
        }
        assert!(!default.contains("exe"));
        assert!(!default.contains("gz"));
        assert!(resolve_extensions(Some(&["any".into()])).is_empty());
        let custom = resolve_extensions(Some(&["images+pdf".into()]));
        assert!(custom.contains("png") && custom.contains("pdf") && !custom.contains("txt"));
        let words = resolve_extensions(Some(&["txt".into(), "BIN".into()]));
        assert_eq!(words.into_iter().collect::<Vec<_>>(), vec!["bin", "txt"]);
    }

    #[test]
    fn extensions_as_python_splits_them() {
        assert_eq!(extension("a.txt"), ".txt");
        assert_eq!(extension("a.tar.gz"), ".gz");
        assert_eq!(extension("README"), "");
        assert_eq!(extension(".bashrc"), "");
        assert_eq!(extension("dir.d/file"), "");
        assert_eq!(extension("x.PNG"), ".PNG");
    }

    #[test]
    fn checks_in_kinto_attachment_order() {
        let r = rules();
        assert_eq!(
            message(check(vec![part("file", Some("a.txt"), b"x")], &r).unwrap_err()),
            (400, "Attachment missing.".into())
        );
        assert_eq!(
            message(check(vec![part("attachment", None, b"x")], &r).unwrap_err()),
            (400, "body: Filename is required.".into())
        );
        assert_eq!(
            message(check(vec![part("attachment", Some("a.exe"), b"x")], &r).unwrap_err()),
            (400, "body: File extension is not allowed.".into())
        );
        let mut small = rules();
        small.max_size = Some(3);
        assert_eq!(
            message(check(vec![part("attachment", Some("a.exe"), b"xxxx")], &small).unwrap_err()),
            (
                400,
                "body: File size (4 bytes) exceeds the limit (3 bytes).".into()
            )
        );
        let ok = || part("attachment", Some("a.txt"), b"x");
        assert_eq!(
            message(check(vec![ok(), part("data", None, b"{nope")], &r).unwrap_err()).1,
            "body: data is not valid JSON (key must be a string at line 1 column 2)"
        );
        assert_eq!(
            message(check(vec![ok(), part("permissions", Some("p.json"), b"{}")], &r).unwrap_err())
                .1,
            "body: 'permissions' field should be passed as form data, not files"
        );
        assert_eq!(
            message(check(vec![ok(), part("extra", None, b"1")], &r).unwrap_err()).1,
            "body: 'extra' not in ('data', 'permissions')"
        );
        let up = check(
            vec![
                part("data", None, br#"{"a": 1}"#),
                ok(),
                part("permissions", None, br#"{"read": ["system.Everyone"]}"#),
            ],
            &r,
        )
        .unwrap();
        assert_eq!(up.filename, "a.txt");
        assert_eq!(up.mimetype, "text/plain");
        assert_eq!(up.data, Some(json!({"a": 1})));
        assert_eq!(up.permissions, Some(json!({"read": ["system.Everyone"]})));
    }

    #[test]
    fn mimetype_from_part_then_overrides() {
        let mut r = rules();
        let mut p = part("attachment", Some("key.pem"), b"x");
        p.content_type = Some("text/plain".into());
        assert_eq!(
            check(
                vec![p],
                &Rules {
                    extensions: BTreeSet::new(),
                    ..r.clone()
                }
            )
            .unwrap()
            .mimetype,
            "application/x-pem-file"
        );
        r.mimetypes = mimetype_overrides(Some(".txt:text/x-mine"));
        assert_eq!(
            check(vec![part("attachment", Some("a.txt"), b"x")], &r)
                .unwrap()
                .mimetype,
            "text/x-mine"
        );
    }

    #[test]
    fn metadata_and_location() {
        let mut s = AttachmentSettings {
            folder: Some("{bucket_id}/{collection_id}/".into()),
            ..Default::default()
        };
        let r = Rules::new(&s, "b", "c", "r");
        let up = check(vec![part("attachment", Some("Hello.TXT"), b"hello")], &r).unwrap();
        let p = prepare(&up, &r).unwrap();
        assert_eq!(p.file, FileHash::of(b"hello"));
        assert_eq!(
            Value::Object(p.meta.clone()),
            json!({
                "filename": "Hello.TXT",
                "location": format!("b/c/{}.txt", FileHash::of(b"hello")),
                "hash": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                "mimetype": "text/plain",
                "size": 5,
            })
        );
        s.gzipped = true;
        s.folder = None;
        let r = Rules::new(&s, "b", "c", "r");
        let p = prepare(&up, &r).unwrap();
        let mut unzipped = Vec::new();
        std::io::Read::read_to_end(
            &mut flate2::read::GzDecoder::new(&p.stored[..]),
            &mut unzipped,
        )
        .unwrap();
        assert_eq!(unzipped, b"hello");
        assert_eq!(p.meta["filename"], json!("Hello.TXT.gz"));
        assert_eq!(p.meta["mimetype"], json!("application/x-gzip"));
        assert_eq!(p.meta["size"], json!(p.stored.len()));
        assert_eq!(p.meta["location"], json!(format!("{}.gz", p.file)));
        assert_eq!(
            p.meta["original"],
            json!({"filename": "Hello.TXT", "hash": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
                   "mimetype": "text/plain", "size": 5})
        );
    }
}
