//! What the Logto and GreenLake REST dialects need:
//!
//! - `users.name` / `users.name_lower`: the name a user goes by, derived from its data (see
//!   `userdir::domain::display_name`; the rule is copied below for existing rows, since a
//!   migration is a snapshot) and folded in Rust like every `*_lower` column, indexed for
//!   search.
//! - `regexp(pattern, value)` on PostgreSQL, so that the query compiler emits the same SQL for
//!   both backends: SQLite's is registered on each connection by sqlx (Rust's `regex` crate);
//!   here it is the ARE operator `~`. Patterns are validated against a common subset before
//!   they reach either (see `userdir::query::regex`).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000003_rest_dialects"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    Name,
    NameLower,
}

/// `userdir::domain::display_name` as of this migration.
fn display_name(data: &serde_json::Value) -> Option<String> {
    let string = |key: &str| {
        data.get(key)
            .and_then(serde_json::Value::as_str)
            .filter(|s| !s.trim().is_empty())
    };
    if let Some(name) = string("name") {
        return Some(name.to_owned());
    }
    let parts: Vec<&str> = ["givenName", "familyName"]
        .into_iter()
        .filter_map(string)
        .collect();
    (!parts.is_empty()).then(|| parts.join(" "))
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Columns(backend);
        // One column per statement: SQLite alters one thing at a time.
        for column in [Users::Name, Users::NameLower] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .add_column(c.text(column).null().to_owned())
                        .to_owned(),
                )
                .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name("idx_users_name_lower")
                    .table(Users::Table)
                    .col(Users::NameLower)
                    .col(Users::Id)
                    .to_owned(),
            )
            .await?;

        let db = manager.get_connection();
        let rows = db
            .query_all_raw(Statement::from_string(
                backend,
                "SELECT id, data FROM users WHERE data IS NOT NULL",
            ))
            .await?;
        for row in rows {
            let id: String = row.try_get("", "id")?;
            let data: serde_json::Value = row.try_get("", "data")?;
            let Some(name) = display_name(&data) else {
                continue;
            };
            let update = Query::update()
                .table(Users::Table)
                .value(Users::NameLower, name.to_lowercase())
                .value(Users::Name, name)
                .and_where(Expr::col(Users::Id).eq(id))
                .to_owned();
            db.execute(&update).await?;
        }

        if backend == DbBackend::Postgres {
            db.execute_unprepared(
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
        manager
            .drop_index(
                Index::drop()
                    .name("idx_users_name_lower")
                    .table(Users::Table)
                    .to_owned(),
            )
            .await?;
        for column in [Users::NameLower, Users::Name] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Users::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
