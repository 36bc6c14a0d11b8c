//! Checkpoints: `(offset, ts, chain head)` exported by `cairn log
//! checkpoint` and kept *outside* the server (a ticket, a mail, another
//! machine). A hash chain only proves history to someone who holds a head
//! recorded earlier (eventlog-notes R8): whoever can write the data
//! directory can rewrite it and recompute every later hash, and `verify`
//! alone would find it sound. `verify --against` checks that the log still
//! holds the same `h[offset]`, that is, that it extends the checkpoint.
//!
//! Text form, one JSON line (so `jq` reads it and a person can too):
//!
//! ```text
//! {"cairn_checkpoint":1,"offset":1200,"ts_ms":1735689600000,"time":"2025-01-01T00:00:00.000Z","head":"9c1f…"}
//! ```

use std::path::Path;

use eventlog::{ChainHash, Head, Offset};
use serde_json::{json, Value};

use super::time::format_ms;
use super::ToolError;

/// Format version of the text form.
const CHECKPOINT_VERSION: u64 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checkpoint {
    pub offset: Offset,
    pub ts_ms: u64,
    pub head: ChainHash,
}

impl From<Head> for Checkpoint {
    fn from(h: Head) -> Checkpoint {
        Checkpoint {
            offset: h.offset,
            ts_ms: h.ts_ms,
            head: h.hash,
        }
    }
}

impl Checkpoint {
    pub fn to_json(&self) -> Value {
        json!({
            "cairn_checkpoint": CHECKPOINT_VERSION,
            "offset": self.offset,
            "ts_ms": self.ts_ms,
            "time": format_ms(self.ts_ms),
            "head": self.head.to_hex(),
        })
    }

    /// Parses the text form.
    pub fn parse(text: &str) -> Result<Checkpoint, ToolError> {
        let bad = |why: &str| ToolError::Usage(format!("not a Cairn checkpoint: {why}"));
        let v: Value = serde_json::from_str(text.trim()).map_err(|e| bad(&e.to_string()))?;
        if v["cairn_checkpoint"] != json!(CHECKPOINT_VERSION) {
            return Err(bad("no \"cairn_checkpoint\": 1"));
        }
        let offset = v["offset"]
            .as_u64()
            .ok_or_else(|| bad("no integer offset"))?;
        let ts_ms = v["ts_ms"].as_u64().ok_or_else(|| bad("no integer ts_ms"))?;
        let hex = v["head"].as_str().ok_or_else(|| bad("no head"))?;
        let head = parse_hash(hex).ok_or_else(|| bad("head is not 64 hex digits"))?;
        Ok(Checkpoint {
            offset,
            ts_ms,
            head,
        })
    }

    /// `--against`: inline JSON, or a file holding it.
    pub fn from_arg(arg: &str) -> Result<Checkpoint, ToolError> {
        if arg.trim_start().starts_with('{') {
            return Checkpoint::parse(arg);
        }
        let path = Path::new(arg);
        let text = std::fs::read_to_string(path).map_err(ToolError::at("reading", path))?;
        Checkpoint::parse(&text)
    }

    /// Whether a log whose head is `log_head` and whose chain head at this
    /// checkpoint's offset is `at_offset` (`None`: the log is shorter)
    /// extends this checkpoint.
    pub fn check(&self, log_head: &Head, at_offset: Option<&Head>) -> Result<(), ToolError> {
        let Some(at) = at_offset.filter(|_| self.offset <= log_head.offset) else {
            return Err(ToolError::Checkpoint(format!(
                "the log ends at offset {} but the checkpoint names offset {}: records were \
                 removed from the end, or this is another log",
                log_head.offset, self.offset
            )));
        };
        if at.hash != self.head || at.ts_ms != self.ts_ms {
            return Err(ToolError::Checkpoint(format!(
                "at offset {} the chain head is {} (ts {}), the checkpoint says {} (ts {}): \
                 history up to offset {} was rewritten",
                self.offset, at.hash, at.ts_ms, self.head, self.ts_ms, self.offset
            )));
        }
        Ok(())
    }
}

pub fn parse_hash(hex: &str) -> Option<ChainHash> {
    let hex = hex.trim();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(ChainHash(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cp() -> Checkpoint {
        Checkpoint {
            offset: 12,
            ts_ms: 1_735_689_600_000,
            head: ChainHash([0xab; 32]),
        }
    }

    #[test]
    fn text_round_trips() {
        let text = cp().to_json().to_string();
        assert_eq!(Checkpoint::parse(&text).unwrap(), cp());
        assert!(
            text.contains("\"time\":\"2025-01-01T00:00:00.000Z\""),
            "{text}"
        );
    }

    #[test]
    fn from_file_or_inline() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cp.json");
        std::fs::write(&f, format!("{}\n", cp().to_json())).unwrap();
        assert_eq!(Checkpoint::from_arg(f.to_str().unwrap()).unwrap(), cp());
        assert_eq!(
            Checkpoint::from_arg(&cp().to_json().to_string()).unwrap(),
            cp()
        );
        assert_eq!(
            Checkpoint::from_arg("/no/such/file")
                .unwrap_err()
                .exit_code(),
            1
        );
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "",
            "{}",
            r#"{"cairn_checkpoint":1,"offset":1,"ts_ms":1,"head":"zz"}"#,
            r#"{"cairn_checkpoint":2,"offset":1,"ts_ms":1,"head":"00"}"#,
        ] {
            assert_eq!(Checkpoint::parse(bad).unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn check_names_what_differs() {
        let c = cp();
        let same = Head {
            offset: 12,
            hash: c.head,
            ts_ms: c.ts_ms,
        };
        let longer = Head { offset: 99, ..same };
        c.check(&longer, Some(&same)).unwrap();
        let shorter = Head { offset: 11, ..same };
        let e = c.check(&shorter, None).unwrap_err();
        assert!(e.to_string().contains("removed from the end"), "{e}");
        let other = Head {
            hash: ChainHash([1; 32]),
            ..same
        };
        let e = c.check(&longer, Some(&other)).unwrap_err();
        assert!(e.to_string().contains("rewritten"), "{e}");
        assert_eq!(e.exit_code(), 3);
    }
}
