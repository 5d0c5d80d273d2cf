//! SQLite only: trigram indexes that answer substring searches (ignore-case contains and
//! ends-with on email, phone, name and username), which a B-tree cannot: FTS5 tables with the
//! trigram tokenizer over the folded columns those searches compare. PostgreSQL has its
//! pg_trgm indexes from migration 7 and gets nothing here.
//!
//! Each FTS5 table is contentless (it stores only the index, not a second copy of the text) and
//! allows deletes (`contentless_delete=1`, SQLite 3.43+). Its rowid is not the source row's:
//! `users` and `usernames` have text primary keys, so their rowids may change on VACUUM. A key
//! table gives every source row a stable INTEGER PRIMARY KEY, unique on the source id, so that
//! a search maps its matches back to ids and a delete or update finds its FTS row by a seek.
//! Triggers keep both in step with every write, in the writer's transaction.
//!
//! The tokenizer is case-sensitive: the indexed columns are folded already, and the store folds
//! the searched value the same way, so a match is exactly a substring of the folded text.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000010_sqlite_trigram"
    }
}

/// One trigram index over some text columns of a source table.
struct TrigramIndex {
    /// The FTS5 table; its columns are named after the indexed source columns' meaning.
    fts: &'static str,
    /// The key table: `key INTEGER PRIMARY KEY, source_id TEXT NOT NULL UNIQUE`.
    keys: &'static str,
    /// The source table and its text primary key.
    source: &'static str,
    source_id: &'static str,
    /// (FTS column, source column holding the folded text).
    columns: &'static [(&'static str, &'static str)],
}

/// The names the read compiler uses (`store::reads::compile`, `TrigramIndex` there).
const INDEXES: [TrigramIndex; 2] = [
    TrigramIndex {
        fts: "users_trigram",
        keys: "users_trigram_keys",
        source: "users",
        source_id: "id",
        columns: &[
            ("email", "email_lower"),
            ("phone", "phone_lower"),
            ("name", "name_lower"),
        ],
    },
    TrigramIndex {
        fts: "usernames_trigram",
        keys: "usernames_trigram_keys",
        source: "usernames",
        source_id: "id",
        columns: &[("username", "username_lower")],
    },
];

impl TrigramIndex {
    fn fts_columns(&self) -> String {
        self.columns
            .iter()
            .map(|(fts, _)| *fts)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The source columns of `row` (`new`, `old` or a table alias), in FTS column order.
    fn source_values(&self, row: &str) -> String {
        self.columns
            .iter()
            .map(|(_, source)| format!("{row}.{source}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// The key of the source row `row.id`.
    fn key_of(&self, row: &str) -> String {
        let Self {
            keys, source_id, ..
        } = self;
        format!("(SELECT key FROM {keys} WHERE source_id = {row}.{source_id})")
    }

    fn create(&self) -> Vec<String> {
        let Self {
            fts,
            keys,
            source,
            source_id,
            ..
        } = self;
        let fts_columns = self.fts_columns();
        let new_values = self.source_values("new");
        let new_key = self.key_of("new");
        let old_key = self.key_of("old");
        let changed = self
            .columns
            .iter()
            .map(|(_, column)| format!("old.{column} IS NOT new.{column}"))
            .collect::<Vec<_>>()
            .join(" OR ");
        let watched = self
            .columns
            .iter()
            .map(|(_, column)| *column)
            .collect::<Vec<_>>()
            .join(", ");
        vec![
            format!(
                "CREATE TABLE {keys} (key INTEGER PRIMARY KEY, source_id TEXT NOT NULL UNIQUE)"
            ),
            format!(
                "CREATE VIRTUAL TABLE {fts} USING fts5({fts_columns}, content='', \
                 contentless_delete=1, tokenize='trigram case_sensitive 1')"
            ),
            // Existing rows, in one pass each.
            format!("INSERT INTO {keys} (source_id) SELECT {source_id} FROM {source}"),
            format!(
                "INSERT INTO {fts} (rowid, {fts_columns}) SELECT k.key, {} \
                 FROM {source} s JOIN {keys} k ON k.source_id = s.{source_id}",
                self.source_values("s")
            ),
            format!(
                "CREATE TRIGGER {fts}_insert AFTER INSERT ON {source} BEGIN \
                 INSERT INTO {keys} (source_id) VALUES (new.{source_id}); \
                 INSERT INTO {fts} (rowid, {fts_columns}) VALUES ({new_key}, {new_values}); \
                 END"
            ),
            // A contentless-delete table takes an UPDATE that sets every column.
            format!(
                "CREATE TRIGGER {fts}_update AFTER UPDATE OF {watched} ON {source} \
                 WHEN {changed} BEGIN \
                 UPDATE {fts} SET ({fts_columns}) = ({new_values}) WHERE rowid = {new_key}; \
                 END"
            ),
            format!(
                "CREATE TRIGGER {fts}_delete AFTER DELETE ON {source} BEGIN \
                 DELETE FROM {fts} WHERE rowid = {old_key}; \
                 DELETE FROM {keys} WHERE source_id = old.{source_id}; \
                 END"
            ),
        ]
    }

    fn drop(&self) -> Vec<String> {
        let Self { fts, keys, .. } = self;
        let mut statements: Vec<String> = ["insert", "update", "delete"]
            .iter()
            .map(|event| format!("DROP TRIGGER {fts}_{event}"))
            .collect();
        statements.push(format!("DROP TABLE {fts}"));
        statements.push(format!("DROP TABLE {keys}"));
        statements
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let db = manager.get_connection();
        for index in &INDEXES {
            for statement in index.create() {
                db.execute_unprepared(&statement).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() != DbBackend::Sqlite {
            return Ok(());
        }
        let db = manager.get_connection();
        for index in &INDEXES {
            for statement in index.drop() {
                db.execute_unprepared(&statement).await?;
            }
        }
        Ok(())
    }
}
