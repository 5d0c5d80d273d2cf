//! The exclusive import on PostgreSQL: it drops the non-unique indexes and the foreign keys of
//! the import's tables. A foreign-key check locks the parent row (`FOR KEY SHARE`), which writes
//! the user's tuple and a WAL record for every child row: about a third of a 200,000-user
//! import's time, the indexes another third. At the end each foreign key is checked in one join.
//!
//! Who waits: the drops take an ACCESS EXCLUSIVE lock on the tables, so nobody reads or writes
//! them until the import commits (readers wait, and fail by their deadline when it comes
//! first), and nobody sees them without their indexes or foreign keys.

use sea_orm::{DatabaseConnection, DbErr};
use sqlx::Postgres;

use super::{KEPT, TABLES};
use crate::store::writes::import::{begin_postgres, exec_error, execute_trusted};

/// Memory for each index build: a sort of a million keys fits, instead of spilling to disk.
const BUILD_MEMORY: &str = "256MB";

/// The import's transaction, holding the event log's lock and the tables, with what it dropped
/// dropped; and the statements that put that back, the indexes first, then the foreign keys.
pub(super) async fn begin(
    db: &DatabaseConnection,
) -> Result<(sqlx::Transaction<'static, Postgres>, Vec<String>), DbErr> {
    let mut txn = begin_postgres(db).await?;
    // Every table at once, in the order a reader reads them (users, their authenticators, the
    // event log), so that a reader that holds one and waits for the next cannot close a circle
    // with the drops below.
    execute_trusted(
        &mut txn,
        format!("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", TABLES.join(", ")),
    )
    .await?;
    // Memory for the index builds at the end.
    execute_trusted(
        &mut txn,
        format!("SET LOCAL maintenance_work_mem = '{BUILD_MEMORY}'"),
    )
    .await?;
    let tables: Vec<String> = TABLES.iter().map(|t| (*t).to_owned()).collect();
    let kept: Vec<String> = KEPT.iter().map(|t| (*t).to_owned()).collect();
    // Names come quoted from the catalog (regclass, quote_ident): no text from the input.
    let indexes: Vec<(String, String)> = sqlx::query_as(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) \
         FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
         WHERE i.indrelid = ANY($1::text[]::regclass[]) AND NOT i.indisunique \
         AND NOT i.indisprimary AND c.relname <> ALL($2) ORDER BY 1",
    )
    .bind(&tables)
    .bind(&kept)
    .fetch_all(&mut *txn)
    .await
    .map_err(exec_error)?;
    let foreign_keys: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT conrelid::regclass::text, quote_ident(conname), pg_get_constraintdef(oid) \
         FROM pg_constraint WHERE contype = 'f' AND conrelid = ANY($1::text[]::regclass[]) \
         ORDER BY 1, 2",
    )
    .bind(&tables)
    .fetch_all(&mut *txn)
    .await
    .map_err(exec_error)?;
    let mut restore = Vec::with_capacity(indexes.len() + foreign_keys.len());
    for (index, definition) in indexes {
        execute_trusted(&mut txn, format!("DROP INDEX {index}")).await?;
        restore.push(definition);
    }
    for (table, name, definition) in foreign_keys {
        execute_trusted(
            &mut txn,
            format!("ALTER TABLE {table} DROP CONSTRAINT {name}"),
        )
        .await?;
        restore.push(format!(
            "ALTER TABLE {table} ADD CONSTRAINT {name} {definition}"
        ));
    }
    Ok((txn, restore))
}
