//! `kar-injector`: serves the mutating admission webhook over HTTPS.

use anyhow::{bail, Context, Result};
use kar_injector::{server, InjectorConfig};
use std::path::PathBuf;
use std::sync::Arc;

const USAGE: &str = "Usage: kar-injector [OPTIONS]

Serve the Kubernetes mutating admission webhook that injects kar into pods annotated
with kar.ibm.com/app (POST /mutate over HTTPS; GET /healthz).

Options:
  -port int               HTTPS port (default 8443)
  -tls_cert string        PEM certificate chain (default \"/var/run/secrets/kar-injector/tls.crt\")
  -tls_key string         PEM private key (default \"/var/run/secrets/kar-injector/tls.key\")
  -sidecar_image string   image of the injected kar container (default \"kar:latest\")
  -image_pull_policy string  its pull policy (default \"IfNotPresent\")
  -secret_name string     secret with the runtime configuration (default \"kar.ibm.com.runtime-config\")
  -config_dir string      where it is mounted (default \"/var/run/secrets/kar.ibm.com\")
  -kar_command string     kar in the component's image, for kar.ibm.com/sidecarContainer: \"false\" (default \"kar\")
  -v string               log level: error, warn, info, debug (default \"info\")
";

struct Options {
    port: u16,
    tls_cert: PathBuf,
    tls_key: PathBuf,
    level: String,
    config: InjectorConfig,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut options = Options {
        port: 8443,
        tls_cert: "/var/run/secrets/kar-injector/tls.crt".into(),
        tls_key: "/var/run/secrets/kar-injector/tls.key".into(),
        level: "info".into(),
        config: InjectorConfig::default(),
    };
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].trim_start_matches('-');
        if arg == args[i] || arg.is_empty() {
            bail!("unexpected argument {:?}", args[i]);
        }
        let (name, value) = match arg.split_once('=') {
            Some((name, value)) => (name, value.to_string()),
            None if arg == "h" || arg == "help" => (arg, String::new()),
            None => {
                i += 1;
                let value = args
                    .get(i)
                    .with_context(|| format!("flag needs an argument: -{arg}"))?;
                (arg, value.clone())
            }
        };
        let c = &mut options.config;
        match name {
            "h" | "help" => {
                print!("{USAGE}");
                std::process::exit(0);
            }
            "port" => {
                options.port = value
                    .parse()
                    .with_context(|| format!("invalid value {value:?} for flag -port"))?
            }
            "tls_cert" => options.tls_cert = value.into(),
            "tls_key" => options.tls_key = value.into(),
            "sidecar_image" => c.sidecar_image = value,
            "image_pull_policy" => c.image_pull_policy = value,
            "secret_name" => c.secret_name = value,
            "config_dir" => c.config_dir = value,
            "kar_command" => c.kar_command = value,
            "v" => options.level = value,
            other => bail!("flag provided but not defined: -{other}"),
        }
        i += 1;
    }
    Ok(options)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let options = match parse(&args) {
        Ok(options) => options,
        Err(e) => {
            eprint!("{e:#}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let filter = tracing_subscriber::EnvFilter::try_new(&options.level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    if let Err(e) = run(options) {
        tracing::error!("{e:#}");
        std::process::exit(1);
    }
}

fn run(options: Options) -> Result<()> {
    let tls = server::tls_acceptor(&options.tls_cert, &options.tls_key)?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the async runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(("0.0.0.0", options.port))
            .await
            .with_context(|| format!("cannot listen on port {}", options.port))?;
        let port = listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or(options.port);
        tracing::info!("kar-injector listening on port {port} (HTTPS)");
        server::serve(listener, tls, Arc::new(options.config)).await;
        Ok(())
    })
}
