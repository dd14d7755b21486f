//! DESPACIO's database schema, as sea-orm migrations.
//!
//! The schema is written in SQL inside each migration: PostGIS types, partial and GiST indexes and
//! check constraints say more in SQL than through a builder, and the SQL is what a reviewer reads.
//!
//! # Layout
//! - `m20261124_000001_create_extensions`: PostGIS and `btree_gist`.
//! - `m20261124_000002_create_accounts`: users, password credentials, sessions (refresh-token
//!   families), refresh tokens, magic links.
//! - `m20261124_000003_create_profiles`: profiles (with a `geography(Point,4326)` location),
//!   preferences, settings, photos.
//! - `m20261124_000004_create_social_graph`: swipes, résonances, blocks.
//! - `m20261124_000005_create_moderation`: reports, moderation actions (audit trail).
//! - `m20261124_000006_create_analytics`: anonymous aggregates.
//! - `m20261125_000007_create_discovery_queue`: per-person candidate queues, discovery indexes.
//! - `m20261125_000008_photo_card_index`: covering index for the cards' photo lists.
//! - `m20261125_000009_queue_generation_ranks`: drops queues ranked the old way (rebuilt on demand).
//! - `m20261125_000010_discovery_mirror`: discovery's copies of preferences and status on profiles.
//! - `m20261207_000011_object_deletions`: photo objects still to delete after their rows went.
//! - `m20261207_000012_sealed_report_evidence`: the conversation's last messages kept with a report.
//! - `m20261207_000013_activity_indexes`: indexes for the analytics roll-up and recent activity.
//!
//! Rules: never edit a migration that has been applied somewhere; add a new one. Every migration
//! has a `down`.

pub use sea_orm_migration::prelude::*;

mod m20261124_000001_create_extensions;
mod m20261124_000002_create_accounts;
mod m20261124_000003_create_profiles;
mod m20261124_000004_create_social_graph;
mod m20261124_000005_create_moderation;
mod m20261124_000006_create_analytics;
mod m20261125_000007_create_discovery_queue;
mod m20261125_000008_photo_card_index;
mod m20261125_000009_queue_generation_ranks;
mod m20261125_000010_discovery_mirror;
mod m20261207_000011_object_deletions;
mod m20261207_000012_sealed_report_evidence;
mod m20261207_000013_activity_indexes;

/// The ordered list of DESPACIO's migrations.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261124_000001_create_extensions::Migration),
            Box::new(m20261124_000002_create_accounts::Migration),
            Box::new(m20261124_000003_create_profiles::Migration),
            Box::new(m20261124_000004_create_social_graph::Migration),
            Box::new(m20261124_000005_create_moderation::Migration),
            Box::new(m20261124_000006_create_analytics::Migration),
            Box::new(m20261125_000007_create_discovery_queue::Migration),
            Box::new(m20261125_000008_photo_card_index::Migration),
            Box::new(m20261125_000009_queue_generation_ranks::Migration),
            Box::new(m20261125_000010_discovery_mirror::Migration),
            Box::new(m20261207_000011_object_deletions::Migration),
            Box::new(m20261207_000012_sealed_report_evidence::Migration),
            Box::new(m20261207_000013_activity_indexes::Migration),
        ]
    }
}

/// Runs a block of SQL statements (separated by `;`) in the migration's connection.
pub(crate) async fn run_sql(manager: &SchemaManager<'_>, sql: &str) -> Result<(), DbErr> {
    manager
        .get_connection()
        .execute_unprepared(sql)
        .await
        .map(|_| ())
}

/// A fingerprint of the migration list, used by tests to name a template database that is
/// rebuilt whenever a migration is added or renamed: the count, and an FNV-1a hash of every
/// name in order.
pub fn fingerprint() -> String {
    let names: Vec<String> = Migrator::migrations()
        .iter()
        .map(|m| m.name().to_owned())
        .collect();
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in names.join("\n").bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{}_{hash:016x}", names.len())
}
