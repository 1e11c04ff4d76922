//! The `rivulet` binary: command line -> Config; tracing; serve until SIGINT or SIGTERM.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use rivulet::config::{read_toml_file, settings_from_env, Config};

/// A Kafka-wire-compatible message broker with a durable segmented file log.
#[derive(Parser, Debug)]
#[command(name = "rivulet", version)]
struct Cli {
    /// Listener to bind, as PLAINTEXT://HOST:PORT (Kafka's `listeners`).
    #[arg(long)]
    listeners: Option<String>,
    /// Address given to clients, as PLAINTEXT://HOST:PORT (`advertised.listeners`).
    #[arg(long)]
    advertised_listeners: Option<String>,
    /// Log directories, comma-separated; the first holds the metadata (`log.dirs`).
    #[arg(long)]
    log_dirs: Option<String>,
    /// This broker's id (`node.id`).
    #[arg(long)]
    node_id: Option<i32>,
    /// TOML file of broker settings under Kafka's names.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Any broker setting as key=value, e.g. --override num.partitions=6 (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Print the API table (`key name min served_min max` per line) and exit.
    #[arg(long)]
    api_versions: bool,
}

fn settings(cli: &Cli) -> Result<BTreeMap<String, String>, String> {
    let mut s = BTreeMap::new();
    if let Some(path) = &cli.config {
        s.extend(read_toml_file(path).map_err(|e| e.to_string())?);
    }
    s.extend(settings_from_env());
    for o in &cli.overrides {
        let (k, v) = o
            .split_once('=')
            .ok_or_else(|| format!("--override {o:?}: expected key=value"))?;
        s.insert(k.trim().to_string(), v.trim().to_string());
    }
    let flags = [
        ("listeners", cli.listeners.clone()),
        ("advertised.listeners", cli.advertised_listeners.clone()),
        ("log.dirs", cli.log_dirs.clone()),
        ("node.id", cli.node_id.map(|n| n.to_string())),
    ];
    for (k, v) in flags {
        if let Some(v) = v {
            s.insert(k.to_string(), v);
        }
    }
    Ok(s)
}

fn main() -> ExitCode {
    rivulet::logging::init();
    let cli = Cli::parse();
    if cli.api_versions {
        print!("{}", rivulet::handlers::registry::describe());
        return ExitCode::SUCCESS;
    }
    let config =
        match settings(&cli).and_then(|s| Config::from_settings(s).map_err(|e| e.to_string())) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("rivulet: {e}");
                return ExitCode::from(2);
            }
        };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("rivulet: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let server = match rivulet::server::start(config).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("rivulet: {e}");
                return ExitCode::FAILURE;
            }
        };
        wait_for_signal().await;
        tracing::info!("shutting down");
        server.shutdown().await;
        ExitCode::SUCCESS
    })
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
