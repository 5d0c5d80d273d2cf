//! `regexp(pattern, value)` on PostgreSQL, so that the query compiler emits the same SQL for
//! both backends: SQLite's is registered on each connection by sqlx (Rust's `regex` crate);
//! here it is the ARE operator `~`. Patterns are validated against a common subset before
//! they reach either (see `userdir::query::regex`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000003_regexp"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared(
                    "CREATE OR REPLACE FUNCTION regexp(pattern text, value text) RETURNS boolean \
                     LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$ SELECT value ~ pattern $$",
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS regexp(text, text)")
                .await?;
        }
        Ok(())
    }
}
