//! `despacio-api`: serve the API (default), or run an operator command.
use std::process::ExitCode;

use api::{
    auth::service::create_or_promote,
    config::Settings,
    openapi,
    startup::{migrate, Application},
    state::AppState,
    telemetry,
};
use clap::{Parser, Subcommand, ValueEnum};
use entities::auth::Role;
use secrecy::SecretString;

#[derive(Parser)]
#[command(
    name = "despacio-api",
    version,
    about = "DESPACIO's REST API. Configuration comes from the environment (see README)."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API (the default).
    Serve,
    /// Create an account with a role, or give the role to an existing account (and set its password).
    CreateAdmin {
        #[arg(long)]
        email: String,
        #[arg(long)]
        password: String,
        #[arg(long, value_enum, default_value = "admin")]
        role: AdminRole,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Print the OpenAPI document (what `openapi/openapi.json` holds).
    Openapi,
    /// Fill the database with demo profiles (not implemented yet: see the README).
    Seed {
        #[arg(long)]
        profiles: u64,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum AdminRole {
    Admin,
    Moderator,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        return match openapi::spec_json() {
            Ok(spec) => {
                print!("{spec}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("despacio-api: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("despacio-api: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init(settings.log_format);
    let result = match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(settings).await,
        Command::Migrate => async {
            let db = api::state::connect_database(&settings).await?;
            migrate(&db).await
        }
        .await,
        Command::CreateAdmin { email, password, role } => create_admin(settings, email, password, role).await,
        Command::Seed { profiles } => Err(anyhow::anyhow!(
            "seed --profiles {profiles}: demo data arrives with the discovery engine; not implemented yet"
        )),
        Command::Openapi => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "despacio-api stopped");
            eprintln!("despacio-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let app = Application::build(settings).await?;
    app.run_until_stopped(telemetry::shutdown_signal()).await?;
    tracing::info!("despacio-api stopped cleanly");
    Ok(())
}

async fn create_admin(
    settings: Settings,
    email: String,
    password: String,
    role: AdminRole,
) -> anyhow::Result<()> {
    let chars = password.chars().count();
    if !(8..=128).contains(&chars) {
        anyhow::bail!("--password must be 8 to 128 characters");
    }
    if !email.contains('@') {
        anyhow::bail!("--email must be an email address");
    }
    let auto_migrate = settings.auto_migrate;
    let state = AppState::build(settings).await?;
    if auto_migrate {
        migrate(&state.db).await?;
    }
    let role = match role {
        AdminRole::Admin => Role::Admin,
        AdminRole::Moderator => Role::Moderator,
    };
    let (id, created) = create_or_promote(&state, &email, SecretString::from(password), role)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "{} {} as {} (id {id})",
        if created { "created" } else { "promoted" },
        email,
        role.as_str()
    );
    Ok(())
}
