//! The exclusive import on SQLite: it drops the non-unique indexes of the import's tables and
//! the triggers that feed the trigram search tables (migration 10) one row at a time. At the
//! end it builds each index in one sorted pass, adds the imported rows to the trigram tables in
//! one statement per table (what the triggers would have done, row for row), and puts the
//! triggers back. The foreign keys stay: SQLite checks each by a primary-key lookup.
//!
//! Who waits: only writers. SQLite has one writer at a time, so other writers to the file (a
//! server's) wait up to their busy timeout and then fail with Unavailable; readers keep reading
//! the directory as it was before the import, indexes and all, until it commits (WAL: a reader
//! reads the last commit). The write-ahead log holds the whole import until then, so the disk
//! needs room for it beside the database (about the size the import adds); after the commit the
//! log is copied back and cut to its limit, as after any write.

use sea_orm::{DatabaseConnection, DbErr};
use sqlx::{AssertSqlSafe, Sqlite};

use super::{KEPT, TABLES};
use crate::store::writes::import::{begin_sqlite, exec_error, execute_trusted};

/// A trigram search table, its row-keys table and the trigger that fills both for every row
/// inserted into its source table (migration 10).
struct Trigram {
    trigger: &'static str,
    source: &'static str,
    keys: &'static str,
    search: &'static str,
    /// The search table's columns, and the source's columns that fill them.
    columns: &'static str,
    values: &'static str,
}

const TRIGRAMS: [Trigram; 2] = [
    Trigram {
        trigger: "users_trigram_insert",
        source: "users",
        keys: "users_trigram_keys",
        search: "users_trigram",
        columns: "email, phone, name",
        values: "s.email_lower, s.phone_lower, s.name_lower",
    },
    Trigram {
        trigger: "usernames_trigram_insert",
        source: "usernames",
        keys: "usernames_trigram_keys",
        search: "usernames_trigram",
        columns: "username",
        values: "s.username_lower",
    },
];

/// The memory FTS5 gathers a trigram table's new postings in before it writes them out as a
/// segment (its `hashsize`) while the import fills the table. At FTS5's default, 1 MiB, a
/// million users' trigrams become hundreds of small segments that are merged again and again;
/// at 64 MiB the fill of `users_trigram` took about half the time (8.8 s against 4.5-5.0 s).
/// The table's own setting is put back after the fill.
const FILL_HASH_BYTES: i64 = 64 << 20;

/// FTS5's `hashsize` when a table has no setting of its own.
const DEFAULT_HASH_BYTES: i64 = 1 << 20;

/// The import's transaction, holding SQLite's write lock, with what it dropped dropped; and the
/// statements that put that back: the indexes, the trigram rows, then the triggers.
pub(super) async fn begin(
    db: &DatabaseConnection,
) -> Result<(sqlx::Transaction<'static, Sqlite>, Vec<String>), DbErr> {
    let mut txn = begin_sqlite(db).await?;
    let mut restore = Vec::new();
    for table in TABLES {
        // origin 'c': made by CREATE INDEX (not a primary key's or a UNIQUE constraint's).
        let indexes: Vec<(String, String)> = sqlx::query_as(
            "SELECT m.name, m.sql FROM pragma_index_list(?1) AS l \
             JOIN sqlite_master AS m ON m.type = 'index' AND m.name = l.name \
             WHERE l.\"unique\" = 0 AND l.origin = 'c' ORDER BY m.name",
        )
        .bind(table)
        .fetch_all(&mut *txn)
        .await
        .map_err(exec_error)?;
        for (name, definition) in indexes {
            if KEPT.contains(&name.as_str()) {
                continue;
            }
            execute_trusted(&mut txn, format!("DROP INDEX {}", quoted(&name))).await?;
            restore.push(definition);
        }
    }
    let mut triggers = Vec::new();
    for trigram in TRIGRAMS {
        let definition: Option<(String,)> =
            sqlx::query_as("SELECT sql FROM sqlite_master WHERE type = 'trigger' AND name = ?1")
                .bind(trigram.trigger)
                .fetch_optional(&mut *txn)
                .await
                .map_err(exec_error)?;
        let Some((definition,)) = definition else {
            return Err(DbErr::Custom(format!(
                "the trigger {} is missing: the database is not at the migration this \
                 userdir expects",
                trigram.trigger
            )));
        };
        // Keys are rowids (INTEGER PRIMARY KEY): each new one is the largest so far plus one,
        // so the import's rows are the keys above this one.
        let (before,): (i64,) = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT coalesce(max(key), 0) FROM {}",
            trigram.keys
        )))
        .fetch_one(&mut *txn)
        .await
        .map_err(exec_error)?;
        let hash: Option<(i64,)> = sqlx::query_as(AssertSqlSafe(format!(
            "SELECT CAST(v AS INTEGER) FROM {}_config WHERE k = 'hashsize'",
            trigram.search
        )))
        .fetch_optional(&mut *txn)
        .await
        .map_err(exec_error)?;
        let hash = hash.map_or(DEFAULT_HASH_BYTES, |(bytes,)| bytes);
        execute_trusted(&mut txn, format!("DROP TRIGGER {}", trigram.trigger)).await?;
        let Trigram {
            source,
            keys,
            search,
            columns,
            values,
            ..
        } = trigram;
        // The trigger's two inserts, for every source row without a key, in insert order.
        restore.push(format!(
            "INSERT INTO {keys} (source_id) SELECT s.id FROM {source} AS s \
             WHERE NOT EXISTS (SELECT 1 FROM {keys} AS k WHERE k.source_id = s.id) \
             ORDER BY s.rowid"
        ));
        restore.push(format!(
            "INSERT INTO {search} ({search}, rank) VALUES ('hashsize', {FILL_HASH_BYTES})"
        ));
        restore.push(format!(
            "INSERT INTO {search} (rowid, {columns}) SELECT k.key, {values} \
             FROM {keys} AS k JOIN {source} AS s ON s.id = k.source_id WHERE k.key > {before} \
             ORDER BY k.key"
        ));
        restore.push(format!(
            "INSERT INTO {search} ({search}, rank) VALUES ('hashsize', {hash})"
        ));
        triggers.push(definition);
    }
    restore.extend(triggers);
    Ok((txn, restore))
}

/// An identifier from the catalog as SQLite quotes one.
fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}
