//! `portcullis` command line: parses arguments, then calls `portcullis::cli`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "portcullis",
    version,
    about = "Reverse-proxy authentication gateway"
)]
struct Cli {
    /// Config file.
    #[arg(
        long,
        global = true,
        env = "PORTCULLIS_CONFIG",
        default_value = "config/portcullis.toml"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway (SIGTERM: graceful stop; SIGINT: fast stop).
    Serve,
    /// Validate the config and its key files; one line per problem, exit 1 on any.
    Check,
    /// Apply the embedded database migrations.
    Migrate,
    /// Manage users.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Write a new signing key (default: tokens.signing_key with tokens.algorithm).
    Keygen {
        /// EdDSA, ES256, RS256 or HS256.
        #[arg(long)]
        algorithm: Option<String>,
        /// Where to write the key.
        #[arg(long)]
        out: Option<PathBuf>,
        /// Replace an existing key file.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user; the password is read from stdin (one line).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        username: Option<String>,
        /// Make the user a superuser (the first admin of a closed install).
        #[arg(long)]
        superuser: bool,
    },
    /// Make an existing user an active superuser (recovery; revokes nothing).
    Promote {
        #[arg(long)]
        email: String,
    },
    /// List users: id, email, username, active, superuser (no secrets).
    List,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve => portcullis::cli::serve(&cli.config),
        Command::Check => portcullis::cli::check(&cli.config),
        Command::Migrate => portcullis::cli::migrate(&cli.config),
        Command::User {
            command:
                UserCommand::Create {
                    email,
                    username,
                    superuser,
                },
        } => portcullis::cli::create_user(&cli.config, &email, username.as_deref(), superuser),
        Command::User {
            command: UserCommand::Promote { email },
        } => portcullis::cli::promote_user(&cli.config, &email),
        Command::User {
            command: UserCommand::List,
        } => portcullis::cli::list_users(&cli.config),
        Command::Keygen {
            algorithm,
            out,
            force,
        } => portcullis::cli::keygen(&cli.config, algorithm.as_deref(), out, force),
    }
}
