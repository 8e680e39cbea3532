//! The `netbridge` binary: parses the command line and runs the daemon.

use std::process::ExitCode;

use clap::Parser;
use netbridge::config::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    netbridge::memory::limit_arenas();
    let cli = Cli::parse();
    match cli.command {
        Command::Openapi => match netbridge::api::openapi().to_pretty_json() {
            Ok(doc) => {
                println!("{doc}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("netbridge: cannot render the OpenAPI document: {e}");
                ExitCode::FAILURE
            }
        },
        Command::LoginUrl(args) => {
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(netbridge::serve::login_url(&args.socket)) {
                Ok(url) => {
                    println!("{url}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("netbridge: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Reconcile(args) => {
            init_logs(&args.log_level, args.log_format);
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(netbridge::serve::reconcile(args)) {
                Ok(repairs) => {
                    if repairs.is_empty() {
                        println!("nothing to repair");
                    }
                    for r in repairs {
                        println!("{r}");
                    }
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("netbridge: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Serve(args) => {
            init_logs(&args.log_level, args.log_format);
            let runtime = match runtime() {
                Ok(rt) => rt,
                Err(code) => return code,
            };
            match runtime.block_on(netbridge::serve::run(args)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e}");
                    eprintln!("netbridge: {e}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}

/// Logs go to stderr; colour codes only when stderr is a terminal, so a file, a pipe or journald
/// gets plain text.
fn init_logs(level: &str, format: LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_new(level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, ExitCode> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| {
            eprintln!("netbridge: cannot start the runtime: {e}");
            ExitCode::FAILURE
        })
}
