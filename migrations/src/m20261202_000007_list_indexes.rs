//! Indexes matched to the shapes of a user list, so that a page is read in its order or found
//! by a selective seek instead of sorting or scanning every user:
//!
//! - the default order (creation date descending, the id breaking ties) within the broad
//!   filters: one organization, one state, both, one schema;
//! - on PostgreSQL, the descending sorts on nullable columns (email, phone): they put users
//!   without the value last, which a backward scan of an ascending index cannot do there
//!   (SQLite keeps NULLs smallest, so its backward scan already is that order);
//! - on PostgreSQL, ignore-case contains / ends-with on email, phone, name and username:
//!   trigram GIN indexes (`pg_trgm`) on the folded columns that those searches compare, since a
//!   B-tree only answers a pattern anchored at the start.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend, Statement};

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000007_list_indexes"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrganizationId,
    SchemaId,
    State,
    CreatedAt,
}

/// The default order within a broad filter: `filter columns…, created_at, id`, read backwards
/// for the default descending page.
fn default_order_indexes() -> Vec<(&'static str, Vec<Users>)> {
    vec![
        (
            "idx_users_organization_created",
            vec![Users::OrganizationId, Users::CreatedAt, Users::Id],
        ),
        (
            "idx_users_state_created",
            vec![Users::State, Users::CreatedAt, Users::Id],
        ),
        // An organization's users in one state: an admin UI's filtered page, and the whole
        // filter of an organization-scoped caller asking for a state.
        (
            "idx_users_organization_state_created",
            vec![
                Users::OrganizationId,
                Users::State,
                Users::CreatedAt,
                Users::Id,
            ],
        ),
        (
            "idx_users_schema_created",
            vec![Users::SchemaId, Users::CreatedAt, Users::Id],
        ),
    ]
}

/// PostgreSQL only: `ORDER BY column DESC NULLS LAST, id DESC` (see `order` in the store's
/// read compiler) is not the backward scan of an ascending index, whose NULLs come first.
const DESCENDING_NULLS_LAST: [(&str, &str); 2] = [
    ("idx_users_email_lower_desc", "email_lower"),
    ("idx_users_phone_desc", "phone"),
];

/// PostgreSQL only: the folded columns that ignore-case text matches compare (see `text_expr`
/// and `username_expr` in the store's read compiler), as (index, table, column).
const TRIGRAM: [(&str, &str, &str); 4] = [
    ("idx_users_email_lower_trgm", "users", "email_lower"),
    ("idx_users_phone_lower_trgm", "users", "phone_lower"),
    ("idx_users_name_lower_trgm", "users", "name_lower"),
    (
        "idx_usernames_username_lower_trgm",
        "usernames",
        "username_lower",
    ),
];

/// Why the migration stops where `pg_trgm` cannot be created, and what to do about it.
const PG_TRGM_MISSING: &str = "the PostgreSQL extension pg_trgm is required (trigram indexes \
     for contains and ends-with searches) but could not be created: install it on the database \
     server (it ships with PostgreSQL's contrib modules: the postgresql-contrib package on \
     Debian and Ubuntu), then either migrate as a role allowed to create extensions in this \
     database or have one run `CREATE EXTENSION pg_trgm;` in it first";

async fn create_pg_trgm(db: &SchemaManagerConnection<'_>) -> Result<(), DbErr> {
    let available = db
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT 1 AS available FROM pg_available_extensions WHERE name = 'pg_trgm'",
        ))
        .await?
        .is_some();
    if !available {
        return Err(DbErr::Migration(format!(
            "{PG_TRGM_MISSING} (it is not available on this server)"
        )));
    }
    db.execute_unprepared("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        .await
        .map_err(|error| DbErr::Migration(format!("{PG_TRGM_MISSING} ({error})")))?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, columns) in default_order_indexes() {
            let mut index = Index::create();
            index.name(name).table(Users::Table);
            for column in columns {
                index.col(column);
            }
            manager.create_index(index).await?;
        }
        if manager.get_database_backend() != DbBackend::Postgres {
            return Ok(());
        }
        let db = manager.get_connection();
        for (name, column) in DESCENDING_NULLS_LAST {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON users ({column} DESC NULLS LAST, id DESC)"
            ))
            .await?;
        }
        create_pg_trgm(db).await?;
        for (name, table, column) in TRIGRAM {
            db.execute_unprepared(&format!(
                "CREATE INDEX {name} ON {table} USING gin ({column} gin_trgm_ops)"
            ))
            .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            let db = manager.get_connection();
            let names = TRIGRAM
                .iter()
                .map(|(name, _, _)| *name)
                .chain(DESCENDING_NULLS_LAST.iter().map(|(name, _)| *name));
            for name in names {
                db.execute_unprepared(&format!("DROP INDEX {name}")).await?;
            }
            // pg_trgm stays: it may have been there before, and other schemas may use it.
        }
        for (name, _) in default_order_indexes() {
            manager
                .drop_index(Index::drop().name(name).table(Users::Table).to_owned())
                .await?;
        }
        Ok(())
    }
}
