//! Command line: `kstreams-operator run` and `kstreams-operator crd`.

use std::net::SocketAddr;

use clap::{Parser, Subcommand, ValueEnum};

/// Kubernetes operator for stateful Kafka Streams applications.
#[derive(Debug, Parser)]
#[command(name = "kstreams-operator", version)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controller.
    Run(RunArgs),
    /// Print the StreamApp CustomResourceDefinition as YAML.
    Crd,
    /// Print the objects the operator would create for StreamApps read from a YAML file
    /// (`-` for stdin), without touching a cluster.
    Render {
        /// File with one or more StreamApp documents.
        file: std::path::PathBuf,
    },
    /// Show one StreamApp for people: its Kafka figures, its pods with their node, zone,
    /// tasks and lag, and the conditions not in their good state.
    Describe {
        /// Name of the StreamApp.
        name: String,
        /// Namespace (default: the kubeconfig context's namespace, or `default`).
        #[arg(short, long)]
        namespace: Option<String>,
    },
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines, for terminals.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// Flags of `run`; each has an environment variable equivalent.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Namespaces to watch, comma-separated (default: all namespaces).
    #[arg(long, env = "KSTREAMS_NAMESPACES", value_delimiter = ',')]
    pub namespaces: Vec<String>,
    /// Log format.
    #[arg(long, env = "KSTREAMS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` EnvFilter syntax.
    #[arg(long, env = "KSTREAMS_LOG_LEVEL", default_value = "info,kube=warn")]
    pub log_level: String,
    /// StreamApps reconciled at once.
    #[arg(long, env = "KSTREAMS_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Address of the admin endpoint (/metrics, /livez, /readyz).
    #[arg(long, env = "KSTREAMS_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// Elect a leader through a Lease so several replicas can run; only the leader writes.
    #[arg(long, env = "KSTREAMS_LEADER_ELECTION", default_value_t = false, action = clap::ArgAction::Set)]
    pub leader_election: bool,
    /// Name of the Lease used for leader election.
    #[arg(long, env = "KSTREAMS_LEASE_NAME", default_value = "kstreams-operator")]
    pub lease_name: String,
    /// Namespace of the Lease (default: the operator's own namespace, POD_NAMESPACE).
    #[arg(long, env = "KSTREAMS_LEASE_NAMESPACE")]
    pub lease_namespace: Option<String>,
    /// The operator's own namespace.
    #[arg(long, env = "POD_NAMESPACE", hide = true)]
    pub pod_namespace: Option<String>,
    /// Seconds a leader holds the Lease without renewing it before another may take over.
    #[arg(long, env = "KSTREAMS_LEASE_DURATION", default_value_t = 15)]
    pub lease_duration: u64,
    /// Name of this instance: the leader-election identity and the Events' reporter
    /// (the pod name in a cluster; default: host name and process id).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Seconds between Kafka checks of each app (topics, group, lag); 0 disables them.
    #[arg(long, env = "KSTREAMS_KAFKA_REFRESH_SECONDS", default_value_t = 30)]
    pub kafka_refresh_seconds: u64,
    /// Seconds a Ready pod may have no member in its app's consumer group, or the group may
    /// be other than Stable, before the app is not Ready (with Kafka checks on).
    #[arg(long, env = "KSTREAMS_MEMBER_GRACE_SECONDS", default_value_t = 120)]
    pub member_grace_seconds: u64,
    /// Seconds an app's commits may stand still while records wait before it is reported
    /// Stalled and not Ready (with Kafka checks on).
    #[arg(long, env = "KSTREAMS_STALL_SECONDS", default_value_t = 300)]
    pub stall_seconds: u64,
    /// Seconds in-flight reconciles get to finish after SIGTERM.
    #[arg(long, env = "KSTREAMS_SHUTDOWN_TIMEOUT", default_value_t = 20)]
    pub shutdown_timeout: u64,
    /// Test only: after acting on this reset phase, and before recording it, park the
    /// reconcile forever, so a test can kill the operator in the window a crash would hit.
    #[arg(long, hide = true, value_parser = parse_reset_phase)]
    pub reset_halt_after: Option<crate::crd::ResetPhase>,
}

/// A reset phase by its name, as `status.reset.phase` spells it.
fn parse_reset_phase(name: &str) -> Result<crate::crd::ResetPhase, String> {
    serde_json::from_value(serde_json::Value::String(name.to_string()))
        .map_err(|_| format!("{name:?} is not a reset phase"))
}
