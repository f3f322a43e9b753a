//! `stand-in-kubelet`: the stand-in kubelet as a daemon (`e2e/pods.sh up` runs it).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use kstreams_standin::{Config, Registry, StandIn};

/// Runs the pods labelled `stand-in.kstreams.dev/serve` on kwok nodes as local processes.
#[derive(Debug, Parser)]
#[command(name = "stand-in-kubelet")]
struct Args {
    /// Directory for logs, volumes, the hosts file and the status file.
    #[arg(long, env = "KSO_STANDIN_ROOT")]
    root: PathBuf,
    /// Namespaces to serve (repeatable or comma-separated); none serves all.
    #[arg(
        long = "namespace",
        env = "KSO_STANDIN_NAMESPACES",
        value_delimiter = ','
    )]
    namespaces: Vec<String>,
    /// A label selector the served pods must also match.
    #[arg(long)]
    selector: Option<String>,
    /// Registry files of known images (KSO_STANDIN_IMAGES names more).
    #[arg(long = "registry", required = true)]
    registries: Vec<PathBuf>,
    /// Containers starting at once (each holds its slot until Ready).
    #[arg(long, default_value_t = 2)]
    max_starting: usize,
    /// First restart delay in seconds; doubles up to 300 as CrashLoopBackOff does.
    #[arg(long, default_value_t = 10)]
    restart_backoff_seconds: u64,
    /// Seconds the processes get between SIGTERM and SIGKILL when the stand-in stops.
    #[arg(long, default_value_t = 30)]
    stop_grace_seconds: u64,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stand-in-kubelet: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let registry = Registry::load(&args.registries).map_err(|e| e.to_string())?;
    let client = kube::Client::try_default()
        .await
        .map_err(|e| format!("connecting to Kubernetes: {e}"))?;
    let mut config = Config::new(args.namespaces.clone(), args.root, registry);
    config.selector = args.selector;
    config.max_starting = args.max_starting;
    config.restart_backoff = Duration::from_secs(args.restart_backoff_seconds);
    let images: Vec<&str> = config.registry.images().collect();
    eprintln!(
        "stand-in-kubelet: serving {} (images: {})",
        if args.namespaces.is_empty() {
            "all namespaces".to_string()
        } else {
            args.namespaces.join(",")
        },
        images.join(", ")
    );
    let standin = StandIn::start(client, config).map_err(|e| e.to_string())?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .map_err(|e| format!("installing the SIGTERM handler: {e}"))?;
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    eprintln!("stand-in-kubelet: stopping its processes");
    standin
        .shutdown(Duration::from_secs(args.stop_grace_seconds))
        .await;
    Ok(())
}
