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

/// mimalloc instead of glibc's malloc: a discovery page allocates a few hundred small objects
/// (rows, cards, JSON), and glibc's malloc was a sixth of the API's CPU under load.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
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
    /// Prepare (rebuild) the discovery queues of up to N recently active people now, and report
    /// the cost per person (what despacio-worker does continuously).
    PrepareQueues {
        #[arg(long, default_value_t = 1000)]
        limit: u64,
    },
    /// Benchmark helper: print the emails of the users listed in TABLE (a table with an `id`
    /// column). Refused when APP_ENV=production.
    BenchEmails {
        #[arg(long)]
        table: String,
    },
    /// Benchmark helper: run the photo pipeline on a file (no HTTP, no storage) and print timings,
    /// CPU per upload, output sizes and uploads/s on THREADS threads; writes the variants to OUT.
    BenchPhoto {
        #[arg(long)]
        input: String,
        #[arg(long, default_value_t = 10)]
        iterations: usize,
        #[arg(long, default_value_t = 2)]
        threads: usize,
        #[arg(long, default_value = "bench-photo-out")]
        out: String,
    },
    /// Benchmark helper: SSIM of each FILE against REFERENCE (same size).
    PhotoSsim {
        #[arg(long)]
        reference: String,
        files: Vec<String>,
    },
    /// Show EXPLAIN ANALYZE of the discovery queries for one person (by email).
    ExplainDiscovery {
        #[arg(long)]
        email: String,
    },
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

fn exit(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("despacio-api: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match &cli.command {
        Some(Command::BenchPhoto {
            input,
            iterations,
            threads,
            out,
        }) => {
            return exit(api::photos::bench::bench(input, *iterations, *threads, out));
        }
        Some(Command::PhotoSsim { reference, files }) => {
            return exit(api::photos::bench::compare(reference, files));
        }
        _ => {}
    }
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
        Command::Openapi | Command::BenchPhoto { .. } | Command::PhotoSsim { .. } => Ok(()),
        Command::PrepareQueues { limit } => prepare_queues(settings, limit).await,
        Command::ExplainDiscovery { email } => explain_discovery(settings, email).await,
        Command::BenchEmails { table } => bench_emails(settings, table).await,
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

async fn prepare_queues(settings: Settings, limit: u64) -> anyhow::Result<()> {
    let state = AppState::build(settings).await?;
    let started = std::time::Instant::now();
    let mut done = 0usize;
    while (done as u64) < limit {
        let n = api::worker::prepare_round(&state)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        if n == 0 {
            break;
        }
        done += n;
    }
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "prepared {done} queues in {seconds:.2} s: {:.1} ms per person ({} concurrent), {:.0} people/hour",
        if done > 0 { seconds * 1000.0 / done as f64 } else { 0.0 },
        api::worker::QUEUE_WORKERS,
        if seconds > 0.0 { done as f64 * 3600.0 / seconds } else { 0.0 }
    );
    Ok(())
}

async fn explain_discovery(settings: Settings, email: String) -> anyhow::Result<()> {
    let state = AppState::build(settings).await?;
    let id = api::auth::service::find_user_id(&state, &email)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?
        .ok_or_else(|| anyhow::anyhow!("no account has this email"))?;
    print!(
        "{}",
        api::discovery::service::explain(&state, id)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?
    );
    Ok(())
}

async fn bench_emails(settings: Settings, table: String) -> anyhow::Result<()> {
    use sea_orm::{ConnectionTrait, EntityTrait};
    if settings.app_env == api::config::AppEnv::Production {
        anyhow::bail!("bench-emails is a benchmark helper; it is refused in production");
    }
    if !table.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        anyhow::bail!("--table must be a plain table name");
    }
    let state = AppState::build(settings).await?;
    let rows = state
        .db
        .query_all(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            format!("SELECT id FROM {table}"),
        ))
        .await?;
    let mut out = std::io::stdout().lock();
    for row in rows {
        let id: uuid::Uuid = row.try_get("", "id")?;
        if let Some(user) = entities::users::Entity::find_by_id(id)
            .one(&state.db)
            .await?
        {
            let email =
                api::auth::service::email_of(&state, &user).map_err(|e| anyhow::anyhow!("{e}"))?;
            // A closed pipe (`| head -1`) ends the listing quietly.
            if std::io::Write::write_all(&mut out, format!("{email}\n").as_bytes()).is_err() {
                break;
            }
        }
    }
    Ok(())
}
