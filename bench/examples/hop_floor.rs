//! The floor of one HTTP hop on this host (issue 11): a minimal echo server, served
//! with the sidecar's own hyper settings, called sequentially by the clients kar-bench
//! uses, to tell what an HTTP hop costs by itself from what the sidecar adds.
//!
//!     cargo build --release -p kar-bench --example hop_floor
//!     target/release/examples/hop_floor server [mt|ct] &      # prints its port
//!     target/release/examples/hop_floor client PORT [h2c|h1|h2raw] [calls] [path]
//!
//! Clients: `h2c` and `h1` are kar-bench's (hyper-util's pooled client on the
//! multi-thread runtime; the h2c one as the bench calls the sidecar, one connection);
//! `h2raw` is the `h2` crate driven from one task on a current-thread runtime, as an
//! event-loop client (the npm SDK's Node `http2` session) works: no task hand-offs on
//! the client side, so what remains is the server's.
//! Server: `mt` = the multi-thread runtime (kar's), `ct` = a current-thread one.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use std::convert::Infallible;
use std::time::{Duration, Instant};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    match arg(0) {
        Some("server") => {
            let runtime = match arg(1).unwrap_or("mt") {
                "ct" => tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?,
                _ => tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?,
            };
            runtime.block_on(server())
        }
        Some("client") => {
            let port: u16 = arg(1).unwrap_or("0").parse()?;
            let kind = arg(2).unwrap_or("h2c").to_string();
            let calls: usize = arg(3).unwrap_or("2000").parse()?;
            let path = arg(4).unwrap_or("/echo").to_string();
            let runtime = if kind == "h2raw" {
                tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?
            } else {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()?
            };
            let samples = runtime.block_on(client(port, &kind, calls, &path))?;
            report(&kind, samples);
            Ok(())
        }
        _ => anyhow::bail!(
            "usage: hop_floor server [mt|ct] | client PORT [h2c|h1|h2raw] [calls] [path]"
        ),
    }
}

async fn server() -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0)).await?;
    println!("{}", listener.local_addr()?.port());
    // The sidecar's settings (crates/sidecar/src/server.rs).
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder.http1().keep_alive(true).header_read_timeout(None);
    builder
        .http2()
        .max_concurrent_streams(262_144)
        .initial_stream_window_size(8 * 1024 * 1024)
        .initial_connection_window_size(32 * 1024 * 1024)
        .max_header_list_size(1024 * 1024)
        .max_send_buf_size(1024 * 1024);
    loop {
        let (stream, _) = listener.accept().await?;
        stream.set_nodelay(true)?;
        let builder = builder.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(echo);
            let _ = builder
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn echo(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = request
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let mut response = Response::new(Full::new(body));
    response.headers_mut().insert(
        "content-type",
        http::HeaderValue::from_static("application/kar+json"),
    );
    Ok(response)
}

async fn client(port: u16, kind: &str, calls: usize, path: &str) -> anyhow::Result<Vec<Duration>> {
    let url = format!("http://127.0.0.1:{port}{path}");
    let body = Bytes::from_static(b"[\"hello\"]");
    if kind == "h2raw" {
        return h2raw(port, calls, path, body).await;
    }
    if kind == "h1task" || kind == "h1spawn" {
        return h1conn(port, calls, path, body, kind == "h1spawn").await;
    }
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let mut builder = Client::builder(TokioExecutor::new());
    if kind == "h2c" {
        builder.http2_only(true);
    }
    let client: Client<_, Full<Bytes>> = builder.build(connector);
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls + 200 {
        // The sidecar's health route takes GET only: it measures the sidecar's HTTP
        // path with no store and no component behind it.
        let request = if path.ends_with("/health") {
            Request::get(&url).body(Full::new(Bytes::new()))?
        } else {
            Request::post(&url)
                .header("content-type", "application/kar+json")
                .body(Full::new(body.clone()))?
        };
        let start = Instant::now();
        let response = client.request(request).await?;
        let status = response.status();
        let _ = response.into_body().collect().await?;
        anyhow::ensure!(status.is_success(), "{status}");
        if i >= 200 {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

/// One h2 connection driven from this task: the request loop and the connection are
/// polled by one `select!`, so no wake-up crosses tasks or threads.
async fn h2raw(port: u16, calls: usize, path: &str, body: Bytes) -> anyhow::Result<Vec<Duration>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let (sender, connection) = h2::client::handshake(tcp).await?;
    let mut connection = std::pin::pin!(connection);
    let uri: http::Uri = format!("http://127.0.0.1:{port}{path}").parse()?;
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls + 200 {
        let start = Instant::now();
        let exchange = async {
            let ready = sender.clone().ready().await?;
            let get = path.ends_with("/health");
            let request = Request::builder()
                .method(if get {
                    http::Method::GET
                } else {
                    http::Method::POST
                })
                .uri(uri.clone())
                .header("content-type", "application/kar+json")
                .body(())?;
            let mut ready = ready;
            let (response, mut stream) = ready.send_request(request, get)?;
            if !get {
                stream.send_data(body.clone(), true)?;
            }
            let response = response.await?;
            anyhow::ensure!(response.status().is_success(), "{}", response.status());
            let mut body = response.into_body();
            while let Some(chunk) = body.data().await {
                let chunk = chunk?;
                let _ = body.flow_control().release_capacity(chunk.len());
            }
            Ok::<_, anyhow::Error>(())
        };
        tokio::select! {
            result = exchange => result?,
            result = &mut connection => { result?; anyhow::bail!("connection closed"); }
        }
        if i >= 200 {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

/// One HTTP/1.1 connection (hyper's low-level client, as the sidecar's pool to its
/// component): its connection future either spawned as a task (`h1spawn`, the pool
/// of `crates/sidecar/src/app_pool.rs` before issue 11) or polled by the calling
/// task alongside the exchange (`h1task`).
async fn h1conn(
    port: u16,
    calls: usize,
    path: &str,
    body: Bytes,
    spawn: bool,
) -> anyhow::Result<Vec<Duration>> {
    let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await?;
    tcp.set_nodelay(true)?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake::<_, Full<Bytes>>(TokioIo::new(tcp)).await?;
    let mut connection = Some(connection);
    if spawn {
        let connection = connection.take();
        tokio::spawn(async move {
            if let Some(connection) = connection {
                let _ = connection.await;
            }
        });
    }
    let mut samples = Vec::with_capacity(calls);
    for i in 0..calls + 200 {
        let request = Request::post(path)
            .header("host", "127.0.0.1")
            .header("content-type", "application/kar+json")
            .body(Full::new(body.clone()))?;
        let start = Instant::now();
        let exchange = async {
            sender.ready().await?;
            let response = sender.send_request(request).await?;
            let _ = response.into_body().collect().await?;
            Ok::<_, anyhow::Error>(())
        };
        match connection.as_mut() {
            Some(connection) => tokio::select! {
                result = exchange => result?,
                result = connection => { result?; anyhow::bail!("connection closed"); }
            },
            None => exchange.await?,
        }
        if i >= 200 {
            samples.push(start.elapsed());
        }
    }
    Ok(samples)
}

fn report(kind: &str, mut samples: Vec<Duration>) {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 * q) as usize).min(samples.len() - 1)];
    println!(
        "{kind}: n={} p50={:.1}us p90={:.1}us p99={:.1}us",
        samples.len(),
        at(0.5).as_secs_f64() * 1e6,
        at(0.9).as_secs_f64() * 1e6,
        at(0.99).as_secs_f64() * 1e6
    );
}
