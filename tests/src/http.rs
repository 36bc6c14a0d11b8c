//! A tiny blocking HTTP/1.1 client over `TcpStream`.
//!
//! Why not a crate: the tests need byte-exact control of what is sent
//! (missing or odd `Content-Type`, invalid UTF-8 bodies, malformed
//! `Authorization`, arbitrary methods) and must see every response header as
//! sent (repeated `WWW-Authenticate`, `Content-Length` of a `HEAD`). Each
//! request uses its own connection with `Connection: close`, so a response
//! ends at EOF and a `HEAD` or `304` needs no special framing.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

use crate::User;

/// Where a server's API root is: `host:port` and the path prefix (`/v1`).
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub host_port: String,
    /// Path of the API root without trailing slash, e.g. `/v1`.
    pub prefix: String,
}

impl Endpoint {
    /// Parses `http://host:port/prefix`.
    pub fn parse(url: &str) -> Endpoint {
        let rest = url
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("only http:// URLs are supported, got {url:?}"));
        let (host_port, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, ""),
        };
        Endpoint {
            host_port: host_port.to_string(),
            prefix: path.trim_end_matches('/').to_string(),
        }
    }

    /// `http://host:port/prefix` (no trailing slash).
    pub fn root_url(&self) -> String {
        format!("http://{}{}", self.host_port, self.prefix)
    }
}

/// A request being built. Paths are relative to the API root (`/v1`) unless
/// made raw with [`Request::raw_path`].
#[derive(Debug, Clone)]
pub struct Request {
    endpoint: Endpoint,
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Option<Vec<u8>>,
}

impl Request {
    pub fn new(endpoint: &Endpoint, method: &str, path: &str) -> Request {
        Request {
            endpoint: endpoint.clone(),
            method: method.to_string(),
            target: format!("{}{}", endpoint.prefix, path),
            headers: Vec::new(),
            body: None,
        }
    }

    /// Sends `path` as the request target, without the `/v1` prefix.
    pub fn raw_path(mut self, path: &str) -> Request {
        self.target = path.to_string();
        self
    }

    /// Basic Auth as `user` (None: anonymous).
    pub fn auth(self, user: Option<&User>) -> Request {
        match user {
            Some(u) => self.basic(&u.name, &u.password),
            None => self,
        }
    }

    pub fn user(self, user: &User) -> Request {
        self.auth(Some(user))
    }

    pub fn basic(self, name: &str, password: &str) -> Request {
        let token = base64::engine::general_purpose::STANDARD.encode(format!("{name}:{password}"));
        self.header("Authorization", &format!("Basic {token}"))
    }

    /// Adds a header (several with the same name are all sent).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn headers(mut self, headers: &[(&str, &str)]) -> Request {
        for (k, v) in headers {
            self.headers.push((k.to_string(), v.to_string()));
        }
        self
    }

    /// A JSON body with `Content-Type: application/json`.
    pub fn json(self, body: &Value) -> Request {
        self.header("Content-Type", "application/json")
            .body(body.to_string().into_bytes())
    }

    /// A body sent as is; no `Content-Type` is added.
    pub fn body(mut self, bytes: impl Into<Vec<u8>>) -> Request {
        self.body = Some(bytes.into());
        self
    }

    pub fn method(&self) -> &str {
        &self.method
    }

    pub fn target(&self) -> &str {
        &self.target
    }

    /// Sends the request; panics on a transport error.
    pub fn send(&self) -> Response {
        self.try_send()
            .unwrap_or_else(|e| panic!("{} {}: transport error: {e}", self.method, self.target))
    }

    /// Sends the request; transport errors (server gone) are returned.
    pub fn try_send(&self) -> io::Result<Response> {
        self.try_send_timeout(Duration::from_secs(30))
    }

    pub fn try_send_timeout(&self, timeout: Duration) -> io::Result<Response> {
        let mut stream = TcpStream::connect(&self.endpoint.host_port)?;
        stream.set_read_timeout(Some(timeout))?;
        stream.set_write_timeout(Some(timeout))?;
        stream.set_nodelay(true)?;
        let mut head = format!("{} {} HTTP/1.1\r\n", self.method, self.target);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            head.push_str(&format!("Host: {}\r\n", self.endpoint.host_port));
        }
        head.push_str("Connection: close\r\n");
        for (k, v) in &self.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if let Some(body) = &self.body {
            if !has("content-length") {
                head.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
        } else if matches!(self.method.as_str(), "POST" | "PUT" | "PATCH") && !has("content-length")
        {
            head.push_str("Content-Length: 0\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        if let Some(body) = &self.body {
            bytes.extend_from_slice(body);
        }
        stream.write_all(&bytes)?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        parse_response(&raw, self.method == "HEAD")
            .map(|(status, headers, body)| Response {
                method: self.method.clone(),
                target: self.target.clone(),
                status,
                headers,
                body,
            })
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
    }
}

/// Status, headers and body of a raw response.
type Parsed = (u16, Vec<(String, String)>, Vec<u8>);

fn parse_response(raw: &[u8], head: bool) -> Result<Parsed, String> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| format!("incomplete response ({} bytes)", raw.len()))?;
    let head_text = std::str::from_utf8(&raw[..end]).map_err(|e| format!("non-UTF-8 head: {e}"))?;
    let mut lines = head_text.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line {status_line:?}"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (k, v) = line
            .split_once(':')
            .ok_or_else(|| format!("bad header line {line:?}"))?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let rest = &raw[end + 4..];
    let chunked = headers.iter().any(|(k, v)| {
        k.eq_ignore_ascii_case("transfer-encoding") && v.to_ascii_lowercase().contains("chunked")
    });
    let body = if head || status == 304 || status == 204 {
        Vec::new()
    } else if chunked {
        decode_chunked(rest)?
    } else {
        let len = headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok());
        match len {
            Some(n) if n <= rest.len() => rest[..n].to_vec(),
            Some(n) => {
                return Err(format!(
                    "body shorter ({}) than Content-Length {n}",
                    rest.len()
                ))
            }
            None => rest.to_vec(),
        }
    };
    Ok((status, headers, body))
}

fn decode_chunked(mut rest: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk framing")?;
        let size_text = std::str::from_utf8(&rest[..line_end]).map_err(|_| "bad chunk size")?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| format!("bad chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        if rest.len() < size + 2 {
            return Err("truncated chunk".into());
        }
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

/// A complete response.
#[derive(Clone)]
pub struct Response {
    pub method: String,
    pub target: String,
    pub status: u16,
    /// In the order received, names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    /// The first header of that name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every header of that name, in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body as JSON; panics (showing the response) when it is not.
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("{self}\nbody is not JSON: {e}"))
    }

    /// `json()["data"]`.
    pub fn data(&self) -> Value {
        self.json()["data"].clone()
    }

    /// Asserts the status; returns self for chaining.
    #[track_caller]
    pub fn expect(self, status: u16) -> Response {
        assert_eq!(self.status, status, "unexpected status\n{self}");
        self
    }

    /// The `ETag` header as an integer; panics unless it is `"<digits>"`.
    #[track_caller]
    pub fn etag(&self) -> u64 {
        let raw = self
            .header("ETag")
            .unwrap_or_else(|| panic!("no ETag header\n{self}"));
        raw.strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .and_then(|d| d.parse().ok())
            .unwrap_or_else(|| panic!("ETag {raw:?} is not a quoted integer\n{self}"))
    }
}

impl fmt::Display for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} {} -> {}", self.method, self.target, self.status)?;
        for (k, v) in &self.headers {
            writeln!(f, "  {k}: {v}")?;
        }
        let text = self.text();
        let cut: String = text.chars().take(2000).collect();
        write!(f, "  {cut}")
    }
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}
