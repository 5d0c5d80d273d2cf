//! PostgreSQL only: ends-with searches on the folded text columns served as prefix searches of
//! their reversal, `reverse(column) LIKE 'reversed value%'` (see `suffix_narrowing` in the
//! store's read compiler), by B-tree indexes on `reverse(column)`.
//!
//! Migration 7's trigram indexes serve an ends-with search too, but by every trigram of the
//! value: the suffixes people search by (a mail domain, the last digits of a number) are made
//! of trigrams that nearly every row holds, and intersecting those posting lists costs what
//! the table holds (50 ms at a million users for a domain's 218 users). A prefix of the
//! reversal is one range of a B-tree, whatever the rows around it hold. The columns are
//! `COLLATE "C"`, so their reversal is too, and a LIKE prefix can use the index.
//!
//! SQLite has no `reverse()` to index (a function registered by this process would make the
//! table unwritable for every other SQLite client); its ends-with searches keep migration 10's
//! trigram tables.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000012_suffix_indexes"
    }
}

/// (index, table, folded column): the columns of migration 7's trigram indexes.
const SUFFIX: [(&str, &str, &str); 4] = [
    ("idx_users_email_lower_reversed", "users", "email_lower"),
    ("idx_users_phone_lower_reversed", "users", "phone_lower"),
    ("idx_users_name_lower_reversed", "users", "name_lower"),
    (
        "idx_usernames_username_lower_reversed",
        "usernames",
        "username_lower",
    ),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (name, table, column) in SUFFIX {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON {table} (reverse({column}))"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (name, _, _) in SUFFIX {
            db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
        }
        Ok(())
    }
}
