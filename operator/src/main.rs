//! The `kstreams-operator` binary: `run` the operator, print its `crd`, `render` the
//! children of StreamApps, or `describe` one.

use std::io::IsTerminal;

use clap::Parser;
use kstreams_operator::cli::{Cli, Command, LogFormat, RunArgs};
use tracing_subscriber::EnvFilter;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    match Cli::parse().command {
        Command::Crd => print!("{}", kstreams_operator::crd::crd_yaml()?),
        Command::Render { file } => {
            print!("{}", kstreams_operator::resources::render(&read(&file)?)?)
        }
        Command::Describe { name, namespace } => {
            match kstreams_operator::describe::fetch(&name, namespace.as_deref()).await {
                Ok(d) => print!(
                    "{}",
                    kstreams_operator::describe::render(&d.app, &d.pods, &d.nodes)
                ),
                // One line for a person, not the Debug form `main` would print.
                Err(e) => {
                    eprintln!("error: {e}");
                    std::process::exit(1);
                }
            }
        }
        Command::Run(args) => {
            init_logs(&args)?;
            kstreams_operator::runtime::run(args).await?;
        }
    }
    Ok(())
}

fn read(file: &std::path::Path) -> std::io::Result<String> {
    if file == std::path::Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(file)
    }
}

fn init_logs(args: &RunArgs) -> Result<(), Box<dyn std::error::Error>> {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::try_new(&args.log_level)?)
        .with_ansi(std::io::stdout().is_terminal());
    match args.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs.init(),
    }
    Ok(())
}
