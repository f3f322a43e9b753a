use clap::Parser;
use kstreams_operator::cli::{Cli, Command, LogFormat, RunArgs};
use kstreams_operator::controller::{self, Scope};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Crd => print!("{}", kstreams_operator::crd::crd_yaml()?),
        Command::Run(args) => run(args).await?,
    }
    Ok(())
}

async fn run(args: RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let filter = EnvFilter::try_new(&args.log_level)?;
    let logs = tracing_subscriber::fmt().with_env_filter(filter);
    match args.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    let client = kube::Client::try_default().await?;
    let scope = args.namespace.map_or(Scope::Cluster, Scope::Namespace);
    controller::run(client, scope, args.concurrency, args.instance).await;
    Ok(())
}
