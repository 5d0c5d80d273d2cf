//! A role's holders in the default order of a user list (creation date descending, the id
//! breaking ties), without reading them all: `role_assignments` carries its user's creation
//! date (immutable, so it never needs updating), and an index (role_id, user_created_at,
//! user_id) gives a role's users page by page in that order. Without it a page of a role's
//! users joins every holder and sorts them (120 ms for 20,000 holders at 1,000,000 users), or
//! walks all users testing each for the role (its cost grows as the role gets rarer).

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000011_role_holder_order"
    }
}

const INDEX: &str = "idx_role_assignments_role_user_created";

#[derive(DeriveIden)]
enum RoleAssignments {
    Table,
    RoleId,
    UserId,
    UserCreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // SQLite adds a NOT NULL column only with a default; the backfill below replaces it
        // everywhere, and PostgreSQL drops it so that a write that forgot the column fails.
        manager
            .alter_table(
                Table::alter()
                    .table(RoleAssignments::Table)
                    .add_column(
                        ColumnDef::new(RoleAssignments::UserCreatedAt)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(
            "UPDATE role_assignments SET user_created_at = \
             (SELECT created_at FROM users WHERE users.id = role_assignments.user_id)",
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            db.execute_unprepared(
                "ALTER TABLE role_assignments ALTER COLUMN user_created_at DROP DEFAULT",
            )
            .await?;
        }
        manager
            .create_index(
                Index::create()
                    .name(INDEX)
                    .table(RoleAssignments::Table)
                    .col(RoleAssignments::RoleId)
                    .col(RoleAssignments::UserCreatedAt)
                    .col(RoleAssignments::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name(INDEX)
                    .table(RoleAssignments::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(RoleAssignments::Table)
                    .drop_column(RoleAssignments::UserCreatedAt)
                    .to_owned(),
            )
            .await
    }
}
