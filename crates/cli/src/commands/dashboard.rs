//! `kar dashboard -app A [-port P] [-host H] [-api_token T]`: a web page showing the
//! application (sidecars, actors and their state, reminders, subscriptions, pending
//! requests with Kill and Resume, latency per method), served with the JSON admin
//! API it reads (`/kar/admin/v1`). Like `kar get`, it works against the store; it
//! joins the mesh as a member without a component (service `kar.none`, shown among
//! the sidecars) to ask the live sidecars what only they know: which requests their
//! components run, which actors are activated, their latency histograms.

use super::{join_as_client, Context, Signals};
use crate::config::{self, ProcessEnv};
use crate::flags::{Flag, Kind};
use anyhow::{Context as _, Result};
use kar_sidecar::{serve_dashboard, ApiToken, ServerConfig};
use std::io::Write;
use std::net::{IpAddr, SocketAddr};

const PORT: Flag = Flag::new(
    "port",
    Kind::Int,
    "7070",
    "Port of the dashboard (0: any free port; the URL is printed)",
);
const HOST: Flag = Flag::new(
    "host",
    Kind::String,
    "127.0.0.1",
    "Address to serve the dashboard on; an address other than loopback needs -api_token",
);
const API_TOKEN: Flag = Flag::new(
    "api_token",
    Kind::String,
    "",
    "Require this token (Authorization: Bearer) from peers other than 127.0.0.1 and ::1\n\
     (also KAR_API_TOKEN); the page asks for it",
);

pub const FLAGS: &[&Flag] = &[&PORT, &HOST, &API_TOKEN];

pub async fn run(ctx: Context) -> Result<i32> {
    let host = ctx.matches.str("host");
    let Ok(ip) = host.parse::<IpAddr>() else {
        eprintln!("-host {host:?} is not an IP address");
        return Ok(1);
    };
    let Ok(port) = u16::try_from(ctx.matches.int("port")) else {
        eprintln!("-port {} is not a port number", ctx.matches.int("port"));
        return Ok(1);
    };
    let api_token = config::api_token(&ctx.matches, &ProcessEnv)?.and_then(ApiToken::new);
    if !ip.is_loopback() && api_token.is_none() {
        eprintln!(
            "refusing to serve the dashboard on {ip}, which is not loopback, without -api_token (or KAR_API_TOKEN)"
        );
        return Ok(1);
    }
    let address = SocketAddr::new(ip, port);
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .with_context(|| format!("cannot listen on {address}"))?;
    let bound = listener.local_addr().unwrap_or(address);
    let mut signals = Signals::new()?;
    let runtime = join_as_client(&ctx.global, None).await?;
    let config = ServerConfig {
        api_token,
        ..ServerConfig::default()
    };
    let server = serve_dashboard(listener, runtime.clone(), config);
    // The URL on stdout, at once: scripts (and the tests) read it to find a port 0.
    println!(
        "dashboard of application {} at http://{bound}/",
        ctx.global.app
    );
    std::io::stdout().flush()?;
    let signal = signals.recv().await;
    tracing::info!("{signal}: stopping the dashboard");
    server.shutdown().await;
    runtime.shutdown().await;
    Ok(0)
}
