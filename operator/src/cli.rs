//! Command line: `kstreams-operator run` and `kstreams-operator crd`.

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
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "KSTREAMS_WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Log format.
    #[arg(long, env = "KSTREAMS_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log filter, in `tracing` EnvFilter syntax.
    #[arg(long, env = "KSTREAMS_LOG_LEVEL", default_value = "info,kube=warn")]
    pub log_level: String,
    /// StreamApps reconciled at once.
    #[arg(long, env = "KSTREAMS_CONCURRENCY", default_value_t = 8)]
    pub concurrency: u16,
    /// Name of this operator instance in Events (the pod name in a cluster).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
}
