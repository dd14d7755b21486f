//! What every request handler shares: connections, keys and services, built once at start-up.
use crate::photos::storage::PhotoStore;
use std::sync::Arc;

use entities::keys::RedisKeys;
use fred::prelude::{Builder, ClientLike, Config as RedisConfig, Pool};
use sea_orm::{ConnectOptions, Database, DatabaseConnection};
use secrecy::ExposeSecret;

use crate::{
    auth::{password::PasswordHasher, tokens::JwtKeys},
    config::Settings,
    crypto::FieldCipher,
    events::bus::EventBus,
    mail::Mailer,
    metrics::Metrics,
    ratelimit::RateLimiter,
};

/// Shared state, cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: DatabaseConnection,
    pub redis: Pool,
    pub keys: RedisKeys,
    pub cipher: Arc<FieldCipher>,
    pub jwt: Arc<JwtKeys>,
    pub hasher: PasswordHasher,
    pub limiter: RateLimiter,
    pub mailer: Arc<Mailer>,
    pub metrics: Arc<Metrics>,
    pub events: EventBus,
    /// Photo variants (local folder or S3).
    pub photos: PhotoStore,
    /// Bounds concurrent photo processing (`PHOTO_WORKERS`).
    pub photo_slots: Arc<tokio::sync::Semaphore>,
}

/// Opens the PostgreSQL pool.
pub async fn connect_database(settings: &Settings) -> anyhow::Result<DatabaseConnection> {
    let mut options = ConnectOptions::new(settings.database_url().to_owned());
    options
        .max_connections(20)
        .min_connections(1)
        .connect_timeout(std::time::Duration::from_secs(5))
        .acquire_timeout(std::time::Duration::from_secs(5))
        .sqlx_logging(false)
        // No ping before handing out a pooled connection: with sqlx's ping when a connection
        // goes back to the pool (which cannot be turned off in sqlx 0.8), that was two round
        // trips (and PostgreSQL wake-ups) per statement — a discovery page runs two statements.
        // A connection PostgreSQL dropped while idle fails its next statement instead (that
        // request answers 503 and the pool replaces the connection); idle connections are
        // recycled after `idle_timeout`.
        .test_before_acquire(false)
        .idle_timeout(std::time::Duration::from_secs(300))
        // Our statements are prepared once per connection; the generic plan is right for them
        // (primary-key lookups, index walks), and re-planning the discovery queries on every
        // execution (PostgreSQL's default custom plans) costs more than running them.
        .map_sqlx_postgres_opts(|o| {
            o.options([("plan_cache_mode", "force_generic_plan"), ("jit", "off")])
        });
    Database::connect(options)
        .await
        .map_err(|e| anyhow::anyhow!("DATABASE_URL: cannot connect to PostgreSQL: {e}"))
}

/// Opens the Redis pool.
pub async fn connect_redis(settings: &Settings) -> anyhow::Result<Pool> {
    let config = RedisConfig::from_url(settings.redis_url.expose_secret())
        .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?;
    let pool = Builder::from_config(config)
        .with_connection_config(|c| {
            c.connection_timeout = std::time::Duration::from_secs(5);
        })
        .set_policy(fred::prelude::ReconnectPolicy::new_exponential(
            0, 100, 5_000, 2,
        ))
        .build_pool(4)?;
    tokio::time::timeout(std::time::Duration::from_secs(10), pool.init())
        .await
        .map_err(|_| anyhow::anyhow!("REDIS_URL: Redis did not answer within 10 s"))?
        .map_err(|e| anyhow::anyhow!("REDIS_URL: cannot connect to Redis: {e}"))?;
    Ok(pool)
}

impl AppState {
    /// Connects to everything; fails with a message naming what is wrong.
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let db = connect_database(&settings).await?;
        let redis = connect_redis(&settings).await?;
        Self::from_parts(settings, db, redis).await
    }

    pub async fn from_parts(
        settings: Settings,
        db: DatabaseConnection,
        redis: Pool,
    ) -> anyhow::Result<Self> {
        let keys = RedisKeys::new(settings.redis_prefix.clone());
        let cipher = Arc::new(FieldCipher::from_settings(&settings)?);
        let jwt = Arc::new(JwtKeys::from_settings(&settings)?);
        let hasher = PasswordHasher::new(settings.password_hash_concurrency)?;
        let mailer = Arc::new(Mailer::from_settings(&settings)?);
        let settings = Arc::new(settings);
        let limiter = RateLimiter::new(
            redis.clone(),
            keys.clone(),
            Arc::new(settings.rate_limits.clone()),
        );
        let metrics = Arc::new(Metrics::new()?);
        let subscriber = Builder::from_config(
            RedisConfig::from_url(settings.redis_url.expose_secret())
                .map_err(|e| anyhow::anyhow!("REDIS_URL: {e}"))?,
        )
        .set_policy(fred::prelude::ReconnectPolicy::new_exponential(
            0, 100, 5_000, 2,
        ))
        .build_subscriber_client()?;
        let events = EventBus::start(redis.clone(), subscriber, keys.clone()).await?;
        let photos = PhotoStore::from_settings(&settings)?;
        let photo_slots = Arc::new(tokio::sync::Semaphore::new(settings.photo_workers));
        Ok(Self {
            events,
            photos,
            photo_slots,
            settings,
            db,
            redis,
            keys,
            cipher,
            jwt,
            hasher,
            limiter,
            mailer,
            metrics,
        })
    }
}
