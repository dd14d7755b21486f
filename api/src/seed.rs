//! `despacio-api seed --profiles N`: realistic demo data, loaded with `COPY`.
//!
//! People are clustered around 30 real cities (weighted by size; Paris, 14 % of everyone, is the
//! dense hotspot), with
//! ages 18–70 skewed towards 25–40, genders 48 % women / 48 % men / 4 % non-binary, 1–3
//! intentions, preferences around their own age, 1–4 approved photos (metadata only), 3 %
//! incognito, 2 % snoozed, and a swipe history: `--swiper-share` of people (default 10 %) have
//! swiped `--swipes-per-swiper` people of their city (default 200, 60 % likes). Every seeded
//! account's email is `seed-<n>@despacio.test` and its password [`SEED_PASSWORD`] (demo data
//! only: the same precomputed Argon2id hash is copied, so seeding costs no hashing).
//! Deterministic for a given `--rng-seed`.
use std::{fmt::Write as _, time::Instant};

use argon2::password_hash::{PasswordHasher as _, SaltString};
use chrono::{Duration, Utc};
use indicatif::{ProgressBar, ProgressStyle};
use rand::{rngs::StdRng, Rng, SeedableRng};
use sea_orm::ConnectionTrait;
use uuid::Uuid;

use crate::state::AppState;

/// The password of every seeded account.
pub const SEED_PASSWORD: &str = "despacio-demo-password";

/// (name, latitude, longitude, weight).
const CITIES: &[(&str, f64, f64, u32)] = &[
    ("Paris", 48.8566, 2.3522, 120),
    ("London", 51.5074, -0.1278, 60),
    ("Berlin", 52.5200, 13.4050, 40),
    ("Madrid", 40.4168, -3.7038, 35),
    ("Barcelona", 41.3874, 2.1686, 30),
    ("Rome", 41.9028, 12.4964, 28),
    ("Milan", 45.4642, 9.1900, 25),
    ("Lyon", 45.7640, 4.8357, 22),
    ("Marseille", 43.2965, 5.3698, 20),
    ("Brussels", 50.8503, 4.3517, 18),
    ("Amsterdam", 52.3676, 4.9041, 18),
    ("Lisbon", 38.7223, -9.1393, 16),
    ("Vienna", 48.2082, 16.3738, 16),
    ("Munich", 48.1351, 11.5820, 16),
    ("Hamburg", 53.5511, 9.9937, 15),
    ("Prague", 50.0755, 14.4378, 14),
    ("Warsaw", 52.2297, 21.0122, 14),
    ("Copenhagen", 55.6761, 12.5683, 12),
    ("Stockholm", 59.3293, 18.0686, 12),
    ("Dublin", 53.3498, -6.2603, 12),
    ("Manchester", 53.4808, -2.2426, 12),
    ("Toulouse", 43.6047, 1.4442, 12),
    ("Bordeaux", 44.8378, -0.5792, 10),
    ("Nantes", 47.2184, -1.5536, 10),
    ("Lille", 50.6292, 3.0573, 10),
    ("Nice", 43.7102, 7.2620, 9),
    ("Geneva", 46.2044, 6.1432, 8),
    ("Zurich", 47.3769, 8.5417, 8),
    ("Montreal", 45.5019, -73.5674, 10),
    ("New York", 40.7128, -74.0060, 40),
];

const INTENTIONS: &[&str] = &[
    "long_term",
    "short_term",
    "friendship",
    "casual",
    "marriage",
    "not_sure",
];
const NAMES: &[&str] = &[
    "Ana", "Léa", "Camille", "Sofia", "Emma", "Chloé", "Inès", "Maya", "Lina", "Zoé", "Hugo",
    "Lucas", "Nathan", "Louis", "Gabriel", "Arthur", "Jules", "Adam", "Noah", "Tom", "Sam", "Alex",
    "Charlie", "Robin", "Eden",
];

/// What to seed.
pub struct SeedOptions {
    pub profiles: u64,
    pub swiper_share: f64,
    pub swipes_per_swiper: u32,
    pub rng_seed: u64,
}

struct Person {
    id: Uuid,
    city: usize,
}

fn gaussian(rng: &mut StdRng) -> f64 {
    // Box–Muller.
    let u1: f64 = rng.gen_range(f64::EPSILON..1.0);
    let u2: f64 = rng.gen();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(len);
    bar.set_style(
        ProgressStyle::with_template("{msg:>10} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2 + 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

async fn copy(pool: &sqlx::PgPool, statement: &str, data: String) -> anyhow::Result<()> {
    let mut conn = pool.acquire().await?;
    let mut copy = conn.copy_in_raw(statement).await?;
    copy.send(data.into_bytes()).await?;
    copy.finish().await?;
    Ok(())
}

/// Seeds `options.profiles` people; returns how many swipes were written.
pub async fn run(state: &AppState, options: &SeedOptions) -> anyhow::Result<u64> {
    let started = Instant::now();
    let pool = state.db.get_postgres_connection_pool().clone();
    let mut rng = StdRng::seed_from_u64(options.rng_seed);
    let salt = SaltString::encode_b64(b"despacio-seed-salt").map_err(|e| anyhow::anyhow!("{e}"))?;
    let phc = argon2::Argon2::new(
        argon2::Algorithm::Argon2id,
        argon2::Version::V0x13,
        argon2::Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("{e}"))?,
    )
    .hash_password(SEED_PASSWORD.as_bytes(), &salt)
    .map_err(|e| anyhow::anyhow!("{e}"))?
    .to_string();
    let offset: i64 = state
        .db
        .query_one(sea_orm::Statement::from_string(
            sea_orm::DatabaseBackend::Postgres,
            "SELECT count(*) AS n FROM users".to_owned(),
        ))
        .await?
        .and_then(|r| r.try_get::<i64>("", "n").ok())
        .unwrap_or(0);
    let total_weight: u32 = CITIES.iter().map(|c| c.3).sum();
    let today = Utc::now().date_naive();
    let now = Utc::now();
    let mut people: Vec<Person> = Vec::with_capacity(options.profiles as usize);
    let chunk = 20_000u64;
    let progress = bar(options.profiles, "profiles");
    let mut done = 0u64;
    while done < options.profiles {
        let n = chunk.min(options.profiles - done);
        let (mut users, mut creds, mut profiles, mut prefs, mut settings, mut photos) = (
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
            String::new(),
        );
        for i in 0..n {
            let index = offset as u64 + done + i;
            let id = Uuid::from_u128(rng.gen());
            let mut pick = rng.gen_range(0..total_weight);
            let city = CITIES.iter().position(|c| {
                if pick < c.3 {
                    true
                } else {
                    pick -= c.3;
                    false
                }
            });
            let city = city.unwrap_or(0);
            // Paris is the hotspot: dense (σ ≈ 5 km, so most of its people live within 10 km of
            // the centre). Elsewhere σ ≈ 6–9 km.
            let spread = if city == 0 {
                0.045
            } else {
                0.05 + f64::from(CITIES[city].3) / 2000.0
            };
            let latitude = (CITIES[city].1 + gaussian(&mut rng) * spread).clamp(-89.9, 89.9);
            let longitude =
                (CITIES[city].2 + gaussian(&mut rng) * spread * 1.4).clamp(-179.9, 179.9);
            let age: i64 = (29.0 + gaussian(&mut rng) * 8.0).round().clamp(18.0, 70.0) as i64;
            let birthdate = today - Duration::days(age * 365 + rng.gen_range(0..365));
            let gender = match rng.gen_range(0..100) {
                0..48 => "woman",
                48..96 => "man",
                _ => "non_binary",
            };
            let sought = match gender {
                "woman" if rng.gen_bool(0.88) => "{man}",
                "man" if rng.gen_bool(0.88) => "{woman}",
                "non_binary" => "{woman,man,non_binary}",
                _ => "{woman,man,non_binary}",
            };
            let k = rng.gen_range(1..=3);
            let mut chosen: Vec<&str> = Vec::new();
            while chosen.len() < k {
                let pick = INTENTIONS[rng.gen_range(0..INTENTIONS.len())];
                if !chosen.contains(&pick) {
                    chosen.push(pick);
                }
            }
            let email = format!("seed-{index}@despacio.test");
            let created = now - Duration::minutes(rng.gen_range(0..60 * 24 * 365));
            let active = now - Duration::minutes(rng.gen_range(0..60 * 24 * 30));
            let _ = writeln!(
                users,
                "{id},\\x{},\\x{},user,active,{created},{created},{active}",
                hex(&state.cipher.blind_index(&email)),
                hex(&state
                    .cipher
                    .encrypt(email.as_bytes(), &format!("users.email:{id}"))),
            );
            let _ = writeln!(creds, "{id},\"{phc}\"");
            let name = NAMES[rng.gen_range(0..NAMES.len())];
            let _ = writeln!(
                profiles,
                "{id},{name},{birthdate},{gender},\"{{{}}}\",{latitude:.6},{longitude:.6},{created},{created}",
                chosen.join(",")
            );
            let age_min = (age - rng.gen_range(3..8)).max(18);
            let age_max = (age + rng.gen_range(3..10)).min(99).max(age_min);
            let distance = [10, 25, 25, 50, 50, 50, 100][rng.gen_range(0..7)];
            let _ = writeln!(prefs, "{id},{age_min},{age_max},{distance},\"{sought}\"");
            let incognito = rng.gen_bool(0.03);
            let snoozed = if rng.gen_bool(0.02) {
                format!("{}", now + Duration::days(7))
            } else {
                String::new()
            };
            let _ = writeln!(settings, "{id},{incognito},{snoozed}");
            for position in 0..rng.gen_range(1..=4) {
                let _ = writeln!(
                    photos,
                    "{},{id},{position},approved,seed/{id}/{position},{:016x},1280,960",
                    Uuid::from_u128(rng.gen()),
                    rng.gen::<u64>()
                );
            }
            people.push(Person { id, city });
        }
        copy(&pool, "COPY users (id, email_hash, email_ciphertext, role, status, created_at, updated_at, last_active_at) FROM STDIN (FORMAT csv)", users).await?;
        copy(
            &pool,
            "COPY password_credentials (user_id, password_hash) FROM STDIN (FORMAT csv)",
            creds,
        )
        .await?;
        copy(&pool, "COPY preferences (user_id, age_min, age_max, max_distance_km, genders) FROM STDIN (FORMAT csv)", prefs).await?;
        copy(
            &pool,
            "COPY settings (user_id, incognito, snoozed_until) FROM STDIN (FORMAT csv)",
            settings,
        )
        .await?;
        // Profiles last: their insert trigger copies the preferences, status and settings that
        // discovery checks onto the row (migration 000010).
        copy(&pool, "COPY profiles (user_id, display_name, birthdate, gender, intentions, latitude, longitude, created_at, updated_at) FROM STDIN (FORMAT csv)", profiles).await?;
        copy(&pool, "COPY photos (id, user_id, position, status, storage_key, content_hash, width, height) FROM STDIN (FORMAT csv)", photos).await?;
        done += n;
        progress.set_position(done);
    }
    progress.finish();

    // Swipe history, within each city.
    let mut by_city: Vec<Vec<usize>> = vec![Vec::new(); CITIES.len()];
    for (i, p) in people.iter().enumerate() {
        by_city[p.city].push(i);
    }
    let swipers: Vec<usize> = (0..people.len())
        .filter(|_| rng.gen_bool(options.swiper_share.clamp(0.0, 1.0)))
        .collect();
    let progress = bar(swipers.len() as u64, "swipers");
    let mut written = 0u64;
    let mut buffer = String::new();
    let mut seen = std::collections::HashSet::new();
    for (n, &i) in swipers.iter().enumerate() {
        let city = &by_city[people[i].city];
        let want = (options.swipes_per_swiper as usize).min(city.len().saturating_sub(1));
        seen.clear();
        let mut tries = 0;
        while seen.len() < want && tries < want * 4 {
            tries += 1;
            let j = city[rng.gen_range(0..city.len())];
            if j == i || !seen.insert(j) {
                continue;
            }
            let action = if rng.gen_bool(0.6) { "like" } else { "pass" };
            let at = now - Duration::minutes(rng.gen_range(0..60 * 24 * 60));
            let _ = writeln!(buffer, "{},{},{action},{at}", people[i].id, people[j].id);
            written += 1;
        }
        if buffer.len() > 8 << 20 || n + 1 == swipers.len() {
            copy(
                &pool,
                "COPY swipes (swiper_id, target_id, action, created_at) FROM STDIN (FORMAT csv)",
                std::mem::take(&mut buffer),
            )
            .await?;
        }
        progress.set_position(n as u64 + 1);
    }
    progress.finish();
    state.db.execute_unprepared("ANALYZE users; ANALYZE profiles; ANALYZE preferences; ANALYZE settings; ANALYZE swipes; ANALYZE photos;").await?;
    tracing::info!(
        profiles = options.profiles,
        swipes = written,
        seconds = started.elapsed().as_secs_f64(),
        "seeded"
    );
    Ok(written)
}
