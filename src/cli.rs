//! The command line (SPEC §1).

use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "coordination-engine",
    version,
    about = "Keeps Kubernetes/OpenShift clusters healthy without fighting GitOps"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default when no subcommand is given).
    Serve {
        /// A YAML file layered over config/default.yaml and under the environment.
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Certificate helpers.
    Certs {
        #[command(subcommand)]
        command: CertsCommand,
    },
    /// Validate the configuration and print it, secrets redacted (exit 2 when invalid).
    CheckConfig {
        #[arg(long)]
        config: Option<PathBuf>,
    },
    /// Print the version.
    Version,
}

#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate a CA and a serving certificate signed by it (PEM; keys mode 0600).
    Generate {
        /// Directory for ca.crt, ca.key, tls.crt, tls.key.
        #[arg(long)]
        out: PathBuf,
        /// DNS name or IP address for the serving cert (repeatable; default localhost,
        /// 127.0.0.1, ::1).
        #[arg(long = "dns")]
        dns: Vec<String>,
        /// Replace existing files.
        #[arg(long)]
        force: bool,
    },
}
