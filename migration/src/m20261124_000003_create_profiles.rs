//! Profiles, preferences, settings and photo metadata.
//!
//! - `profiles.location` is a `geography(Point,4326)` *generated* from `latitude`/`longitude`: the
//!   ORM reads and writes two plain numbers, PostGIS gets a real geography with a GiST index, and
//!   the two can never disagree. The exact position never leaves the API (only rounded distances).
//! - `profiles.bio_ciphertext` is free text a person may fill with anything (health, religion,
//!   contact details): encrypted at rest like the email.
//! - `preferences` is what a person seeks (ages, genders, distance); `settings` holds incognito and
//!   notification switches.
//! - `photos` is metadata only; the bytes live in the object store under `storage_key`.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            r#"
CREATE TABLE profiles (
    user_id        uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    display_name   text,
    birthdate      date,
    gender         text CHECK (gender IN ('woman', 'man', 'non_binary')),
    bio_ciphertext bytea,
    intentions     text[] NOT NULL DEFAULT '{}'
                   CHECK (intentions <@ ARRAY['long_term', 'short_term', 'friendship', 'casual', 'marriage', 'not_sure']::text[]),
    latitude       double precision CHECK (latitude BETWEEN -90 AND 90),
    longitude      double precision CHECK (longitude BETWEEN -180 AND 180),
    location       geography(Point, 4326) GENERATED ALWAYS AS (
                       CASE WHEN latitude IS NULL OR longitude IS NULL THEN NULL
                            ELSE ST_SetSRID(ST_MakePoint(longitude, latitude), 4326)::geography END
                   ) STORED,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((latitude IS NULL) = (longitude IS NULL))
);
CREATE INDEX profiles_location_gist ON profiles USING gist (location);

CREATE TABLE preferences (
    user_id         uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    age_min         smallint NOT NULL DEFAULT 18 CHECK (age_min >= 18),
    age_max         smallint NOT NULL DEFAULT 99 CHECK (age_max <= 120),
    max_distance_km integer NOT NULL DEFAULT 50 CHECK (max_distance_km BETWEEN 1 AND 500),
    genders         text[] NOT NULL DEFAULT ARRAY['woman', 'man', 'non_binary']::text[]
                    CHECK (genders <@ ARRAY['woman', 'man', 'non_binary']::text[]),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (age_min <= age_max)
);

CREATE TABLE settings (
    user_id               uuid PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    incognito             boolean NOT NULL DEFAULT false,
    snoozed_until         timestamptz,
    notify_resonances     boolean NOT NULL DEFAULT true,
    notify_messages       boolean NOT NULL DEFAULT true,
    notify_likes          boolean NOT NULL DEFAULT true,
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE photos (
    id           uuid PRIMARY KEY,
    user_id      uuid NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    position     smallint NOT NULL,
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected')),
    storage_key  text NOT NULL,
    content_hash text NOT NULL,
    width        integer NOT NULL,
    height       integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    reviewed_at  timestamptz
);
CREATE INDEX photos_user_idx ON photos (user_id, position);
"#,
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        crate::run_sql(
            manager,
            "DROP TABLE photos; DROP TABLE settings; DROP TABLE preferences; DROP TABLE profiles;",
        )
        .await
    }
}
