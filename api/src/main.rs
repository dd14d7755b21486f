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
    /// Fill the database with demo profiles (password of every seeded account: despacio-demo-password).
    Seed {
        /// How many people.
        #[arg(long)]
        profiles: u64,
        /// Share of people with a swipe history.
        #[arg(long, default_value_t = 0.1)]
        swiper_share: f64,
        /// Swipes per person with a history.
        #[arg(long, default_value_t = 200)]
        swipes_per_swiper: u32,
        /// Random seed (same seed, same data).
        #[arg(long, default_value_t = 42)]
        rng_seed: u64,
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
        Command::Migrate => {
            async {
                let db = api::state::connect_database(&settings).await?;
                migrate(&db).await
            }
            .await
        }
        Command::CreateAdmin {
            email,
            password,
            role,
        } => create_admin(settings, email, password, role).await,
        Command::Seed {
            profiles,
            swiper_share,
            swipes_per_swiper,
            rng_seed,
        } => {
            seed(
                settings,
                api::seed::SeedOptions {
                    profiles,
                    swiper_share,
                    swipes_per_swiper,
                    rng_seed,
                },
            )
            .await
        }
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

async fn seed(settings: Settings, options: api::seed::SeedOptions) -> anyhow::Result<()> {
    let auto_migrate = settings.auto_migrate;
    let state = AppState::build(settings).await?;
    if auto_migrate {
        migrate(&state.db).await?;
    }
    let started = std::time::Instant::now();
    let swipes = api::seed::run(&state, &options).await?;
    println!(
        "seeded {} profiles and {swipes} swipes in {:.1} s",
        options.profiles,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
