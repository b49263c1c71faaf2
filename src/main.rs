//! `coordination-engine`: parse the command line, load settings, run.
//!
//! Exit codes: 0 clean stop, 1 runtime failure, 2 invalid configuration or startup failure.

use clap::Parser;
use coordination_engine::cli::{CertsCommand, Cli, Command};
use coordination_engine::config::{self, Sources};
use coordination_engine::startup::{Application, stop_on_signal};
use coordination_engine::{banner, telemetry, tls};
use std::path::Path;
use std::process::ExitCode;

const EXIT_STARTUP: u8 = 2;

/// mimalloc instead of glibc's malloc: each review parses its objects into many small
/// allocations, freed at the end of the request, and glibc spent ~16 % of the webhook's CPU on
/// them (`malloc`, `_int_free`, `malloc_consolidate`); measured in docs/perf.md (issue 18).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // One crypto provider for the whole process (STACK.md pitfall 1).
    tls::install_default_provider();
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Serve { config: None }) {
        Command::Serve { config } => serve(config.as_deref()),
        Command::CheckConfig { config } => match load(config.as_deref()) {
            Ok(settings) => {
                print!("{}", settings.to_redacted_yaml());
                ExitCode::SUCCESS
            }
            Err(code) => code,
        },
        Command::Certs {
            command: CertsCommand::Generate { out, dns, force },
        } => generate_certs(&out, dns, force),
        Command::Version => {
            println!("coordination-engine {}", env!("CARGO_PKG_VERSION"));
            ExitCode::SUCCESS
        }
    }
}

fn load(config_file: Option<&Path>) -> Result<config::Settings, ExitCode> {
    Sources::from_process(config_file)
        .and_then(|sources| config::load(&sources))
        .map_err(|error| {
            eprintln!("error: invalid configuration: {error}");
            ExitCode::from(EXIT_STARTUP)
        })
}

fn serve(config_file: Option<&Path>) -> ExitCode {
    let settings = match load(config_file) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    telemetry::init(&settings.log_level, settings.log_format);
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let data_dir = settings.data_dir.clone();
        let app = match Application::build(settings).await {
            Ok(app) => app,
            Err(error) => {
                eprintln!("error: cannot start: {error}");
                return ExitCode::from(EXIT_STARTUP);
            }
        };
        // Handlers first: the banner tells users (and tests) the server is up.
        match stop_on_signal(app.shutdown_handle()) {
            Ok(stopper) => {
                tokio::spawn(stopper);
            }
            Err(error) => {
                eprintln!("error: cannot listen for SIGTERM/SIGINT: {error}");
                return ExitCode::from(EXIT_STARTUP);
            }
        }
        eprint!("{}", banner::render(&app, &data_dir));
        match app.run_until_stopped().await {
            Ok(()) => {
                tracing::info!("stopped");
                ExitCode::SUCCESS
            }
            Err(error) => {
                tracing::error!(%error, "server failed");
                ExitCode::FAILURE
            }
        }
    })
}

fn generate_certs(out: &Path, dns: Vec<String>, force: bool) -> ExitCode {
    let names = if dns.is_empty() {
        tls::generate::default_names()
    } else {
        dns
    };
    match tls::generate::generate_into(out, &names, force) {
        Ok(paths) => {
            println!(
                "wrote {} (CA), {} and {} for: {}",
                paths.ca_cert.display(),
                paths.cert.display(),
                paths.key.display(),
                names.join(", ")
            );
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(EXIT_STARTUP)
        }
    }
}
