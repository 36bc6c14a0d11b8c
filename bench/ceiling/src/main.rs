//! Ceiling server for the load benchmark: answers every request with the same
//! static JSON body (and an ETag), over HTTP/1.1 keep-alive, like a minimal
//! hyper service would.  No routing, no auth, no storage.
//!
//! Usage: `cairn-bench-ceiling [--host H] [--port N] [--body-file F] [--threads T]`
//!
//! `--body-file` makes it serve the bytes of F (e.g. Cairn's own response to
//! "GET one record"), so both servers send bodies of the same size.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use hyper::header::{HeaderValue, CONTENT_TYPE, ETAG};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const DEFAULT_BODY: &str = r#"{"data":{"title":"a static record of about two hundred bytes","description":"served by the benchmark ceiling","done":false,"n":42,"id":"8d1b2e8e-7f2a-4c1e-9d8b-0a1b2c3d4e5f","last_modified":1700000000000},"permissions":{"write":["basicauth:0000"]}}"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut host = "127.0.0.1".to_string();
    let mut port: u16 = 8890;
    let mut body = Bytes::from_static(DEFAULT_BODY.as_bytes());
    let mut threads: usize = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--host" => host = value()?,
            "--port" => port = value()?.parse()?,
            "--body-file" => body = Bytes::from(std::fs::read(value()?)?),
            "--threads" => threads = value()?.parse()?,
            "-h" | "--help" => {
                println!("cairn-bench-ceiling [--host H] [--port N] [--body-file F] [--threads T]");
                return Ok(());
            }
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let addr: SocketAddr = format!("{host}:{port}").parse()?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(addr, body))
}

async fn serve(addr: SocketAddr, body: Bytes) -> Result<(), Box<dyn std::error::Error>> {
    let listener = TcpListener::bind(addr).await?;
    eprintln!(
        "ceiling: listening on http://{addr}/ ({} byte body)",
        body.len()
    );
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_req: Request<hyper::body::Incoming>| {
                let mut response = Response::new(Full::new(body.clone()));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
                headers.insert(ETAG, HeaderValue::from_static("\"1700000000000\""));
                async move { Ok::<_, Infallible>(response) }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
