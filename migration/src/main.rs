//! `migration up|down|status|fresh ...`: sea-orm-migration's CLI over DESPACIO's schema.
//! It reads `DATABASE_URL` like every other process.
use sea_orm_migration::prelude::*;

#[tokio::main]
async fn main() {
    cli::run_cli(migration::Migrator).await;
}
