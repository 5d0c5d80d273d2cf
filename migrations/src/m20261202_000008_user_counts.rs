//! Counters that answer the totals of the broad user lists without counting users: how many
//! users each organization has in each state, and how many of them hold each role.
//!
//! Triggers keep the counters: they run inside the writing statement's transaction, so a
//! counter commits (or rolls back) with the rows it counts, and no write can forget one: API
//! commands, imports and seeding, cascades (a deleted role takes its assignments along), even
//! an operator's own SQL. Writers are serialized on the event log already (`events::lock`), so
//! the counter rows add no contention of their own. `userdir check` recounts and reports drift.
//!
//! - `user_counts (organization_id, state) → total`: one row per organization and state.
//! - `role_user_counts (role_id, organization_id, state) → total`: the holders of a role, by
//!   their organization and state, so a role's list, an organization's view of it and a state
//!   within either are counted too.
//!
//! A counter only grows by an upsert and only shrinks by an update, so a decrement never
//! creates a row; a deleted role's counters go with it. On PostgreSQL the triggers are
//! per statement over transition tables, so a multi-row insert (an import chunk, a seeding
//! batch) adds one delta per organization and state instead of one update per user.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000008_user_counts"
    }
}

#[derive(DeriveIden)]
enum UserCounts {
    Table,
    OrganizationId,
    State,
    Total,
}

#[derive(DeriveIden)]
enum RoleUserCounts {
    Table,
    RoleId,
    OrganizationId,
    State,
    Total,
}

/// The counters as they should be: what `up` fills them with from the existing rows.
const BACKFILL: [&str; 2] = [
    "INSERT INTO user_counts (organization_id, state, total) \
     SELECT organization_id, state, count(*) FROM users GROUP BY organization_id, state",
    "INSERT INTO role_user_counts (role_id, organization_id, state, total) \
     SELECT a.role_id, u.organization_id, u.state, count(*) \
     FROM role_assignments a JOIN users u ON u.id = a.user_id \
     GROUP BY a.role_id, u.organization_id, u.state",
];

/// SQLite: row triggers (SQLite has no statement triggers; its writer is alone anyway).
const SQLITE_TRIGGERS: [&str; 7] = [
    "CREATE TRIGGER users_counted_insert AFTER INSERT ON users BEGIN \
       INSERT INTO user_counts (organization_id, state, total) \
       VALUES (NEW.organization_id, NEW.state, 1) \
       ON CONFLICT (organization_id, state) DO UPDATE SET total = total + 1; \
     END",
    // A user's role assignments go before the user does, while the user's organization and
    // state can still be read by the assignments' own trigger (the cascade would remove them
    // after the user row is gone).
    "CREATE TRIGGER users_counted_before_delete BEFORE DELETE ON users BEGIN \
       DELETE FROM role_assignments WHERE user_id = OLD.id; \
     END",
    "CREATE TRIGGER users_counted_delete AFTER DELETE ON users BEGIN \
       UPDATE user_counts SET total = total - 1 \
       WHERE organization_id = OLD.organization_id AND state = OLD.state; \
     END",
    "CREATE TRIGGER users_counted_update AFTER UPDATE OF organization_id, state ON users \
     WHEN OLD.organization_id IS NOT NEW.organization_id OR OLD.state IS NOT NEW.state BEGIN \
       UPDATE user_counts SET total = total - 1 \
       WHERE organization_id = OLD.organization_id AND state = OLD.state; \
       INSERT INTO user_counts (organization_id, state, total) \
       VALUES (NEW.organization_id, NEW.state, 1) \
       ON CONFLICT (organization_id, state) DO UPDATE SET total = total + 1; \
       UPDATE role_user_counts SET total = total - 1 \
       WHERE organization_id = OLD.organization_id AND state = OLD.state \
         AND role_id IN (SELECT role_id FROM role_assignments WHERE user_id = OLD.id); \
       INSERT INTO role_user_counts (role_id, organization_id, state, total) \
       SELECT role_id, NEW.organization_id, NEW.state, 1 FROM role_assignments \
       WHERE user_id = NEW.id \
       ON CONFLICT (role_id, organization_id, state) DO UPDATE SET total = total + 1; \
     END",
    "CREATE TRIGGER role_assignments_counted_insert AFTER INSERT ON role_assignments BEGIN \
       INSERT INTO role_user_counts (role_id, organization_id, state, total) \
       SELECT NEW.role_id, organization_id, state, 1 FROM users WHERE id = NEW.user_id \
       ON CONFLICT (role_id, organization_id, state) DO UPDATE SET total = total + 1; \
     END",
    "CREATE TRIGGER role_assignments_counted_delete AFTER DELETE ON role_assignments BEGIN \
       UPDATE role_user_counts SET total = total - 1 \
       WHERE role_id = OLD.role_id \
         AND (organization_id, state) = \
             (SELECT organization_id, state FROM users WHERE id = OLD.user_id); \
     END",
    "CREATE TRIGGER roles_counted_delete AFTER DELETE ON roles BEGIN \
       DELETE FROM role_user_counts WHERE role_id = OLD.id; \
     END",
];

/// PostgreSQL: statement triggers over transition tables (`added`, `removed`, `before_rows`,
/// `after_rows`), plus one row trigger that removes a user's role assignments before the user
/// (see the SQLite triggers for why).
const POSTGRES_TRIGGERS: [&str; 14] = [
    "CREATE FUNCTION userdir_count_users_added() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
       INSERT INTO user_counts (organization_id, state, total) \
       SELECT organization_id, state, count(*) FROM added GROUP BY organization_id, state \
       ON CONFLICT (organization_id, state) \
       DO UPDATE SET total = user_counts.total + EXCLUDED.total; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER users_counted_insert AFTER INSERT ON users \
     REFERENCING NEW TABLE AS added FOR EACH STATEMENT \
     EXECUTE FUNCTION userdir_count_users_added()",
    "CREATE FUNCTION userdir_uncount_roles_of_user() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       DELETE FROM role_assignments WHERE user_id = OLD.id; \
       RETURN OLD; \
     END $$",
    "CREATE TRIGGER users_counted_before_delete BEFORE DELETE ON users \
     FOR EACH ROW EXECUTE FUNCTION userdir_uncount_roles_of_user()",
    "CREATE FUNCTION userdir_count_users_removed() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       UPDATE user_counts c SET total = c.total - r.n \
       FROM (SELECT organization_id, state, count(*) AS n FROM removed \
             GROUP BY organization_id, state) r \
       WHERE c.organization_id = r.organization_id AND c.state = r.state; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER users_counted_delete AFTER DELETE ON users \
     REFERENCING OLD TABLE AS removed FOR EACH STATEMENT \
     EXECUTE FUNCTION userdir_count_users_removed()",
    // Every update of users runs this (PostgreSQL allows no column list with transition
    // tables); users whose organization and state stay are joined away at once.
    "CREATE FUNCTION userdir_count_users_moved() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       IF NOT EXISTS (SELECT 1 FROM before_rows b JOIN after_rows a ON a.id = b.id \
         WHERE (a.organization_id, a.state) IS DISTINCT FROM (b.organization_id, b.state)) \
       THEN RETURN NULL; END IF; \
       WITH moved AS (SELECT b.organization_id, b.state, count(*) AS n \
         FROM before_rows b JOIN after_rows a ON a.id = b.id \
         WHERE (a.organization_id, a.state) IS DISTINCT FROM (b.organization_id, b.state) \
         GROUP BY b.organization_id, b.state) \
       UPDATE user_counts c SET total = c.total - m.n FROM moved m \
       WHERE c.organization_id = m.organization_id AND c.state = m.state; \
       INSERT INTO user_counts (organization_id, state, total) \
       SELECT a.organization_id, a.state, count(*) \
       FROM before_rows b JOIN after_rows a ON a.id = b.id \
       WHERE (a.organization_id, a.state) IS DISTINCT FROM (b.organization_id, b.state) \
       GROUP BY a.organization_id, a.state \
       ON CONFLICT (organization_id, state) \
       DO UPDATE SET total = user_counts.total + EXCLUDED.total; \
       WITH moved AS (SELECT r.role_id, b.organization_id, b.state, count(*) AS n \
         FROM before_rows b JOIN after_rows a ON a.id = b.id \
         JOIN role_assignments r ON r.user_id = a.id \
         WHERE (a.organization_id, a.state) IS DISTINCT FROM (b.organization_id, b.state) \
         GROUP BY r.role_id, b.organization_id, b.state) \
       UPDATE role_user_counts c SET total = c.total - m.n FROM moved m \
       WHERE c.role_id = m.role_id AND c.organization_id = m.organization_id \
         AND c.state = m.state; \
       INSERT INTO role_user_counts (role_id, organization_id, state, total) \
       SELECT r.role_id, a.organization_id, a.state, count(*) \
       FROM before_rows b JOIN after_rows a ON a.id = b.id \
       JOIN role_assignments r ON r.user_id = a.id \
       WHERE (a.organization_id, a.state) IS DISTINCT FROM (b.organization_id, b.state) \
       GROUP BY r.role_id, a.organization_id, a.state \
       ON CONFLICT (role_id, organization_id, state) \
       DO UPDATE SET total = role_user_counts.total + EXCLUDED.total; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER users_counted_update AFTER UPDATE ON users \
     REFERENCING OLD TABLE AS before_rows NEW TABLE AS after_rows FOR EACH STATEMENT \
     EXECUTE FUNCTION userdir_count_users_moved()",
    "CREATE FUNCTION userdir_count_role_holders_added() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       INSERT INTO role_user_counts (role_id, organization_id, state, total) \
       SELECT a.role_id, u.organization_id, u.state, count(*) \
       FROM added a JOIN users u ON u.id = a.user_id \
       GROUP BY a.role_id, u.organization_id, u.state \
       ON CONFLICT (role_id, organization_id, state) \
       DO UPDATE SET total = role_user_counts.total + EXCLUDED.total; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER role_assignments_counted_insert AFTER INSERT ON role_assignments \
     REFERENCING NEW TABLE AS added FOR EACH STATEMENT \
     EXECUTE FUNCTION userdir_count_role_holders_added()",
    "CREATE FUNCTION userdir_count_role_holders_removed() RETURNS trigger LANGUAGE plpgsql \
     AS $$ BEGIN \
       UPDATE role_user_counts c SET total = c.total - r.n \
       FROM (SELECT a.role_id, u.organization_id, u.state, count(*) AS n \
             FROM removed a JOIN users u ON u.id = a.user_id \
             GROUP BY a.role_id, u.organization_id, u.state) r \
       WHERE c.role_id = r.role_id AND c.organization_id = r.organization_id \
         AND c.state = r.state; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER role_assignments_counted_delete AFTER DELETE ON role_assignments \
     REFERENCING OLD TABLE AS removed FOR EACH STATEMENT \
     EXECUTE FUNCTION userdir_count_role_holders_removed()",
    "CREATE FUNCTION userdir_uncount_removed_roles() RETURNS trigger LANGUAGE plpgsql AS $$ \
     BEGIN \
       DELETE FROM role_user_counts c USING removed r WHERE c.role_id = r.id; \
       RETURN NULL; \
     END $$",
    "CREATE TRIGGER roles_counted_delete AFTER DELETE ON roles \
     REFERENCING OLD TABLE AS removed FOR EACH STATEMENT \
     EXECUTE FUNCTION userdir_uncount_removed_roles()",
];

const TRIGGERS: [(&str, &str); 7] = [
    ("users_counted_insert", "users"),
    ("users_counted_before_delete", "users"),
    ("users_counted_delete", "users"),
    ("users_counted_update", "users"),
    ("role_assignments_counted_insert", "role_assignments"),
    ("role_assignments_counted_delete", "role_assignments"),
    ("roles_counted_delete", "roles"),
];

const POSTGRES_FUNCTIONS: [&str; 7] = [
    "userdir_count_users_added",
    "userdir_uncount_roles_of_user",
    "userdir_count_users_removed",
    "userdir_count_users_moved",
    "userdir_count_role_holders_added",
    "userdir_count_role_holders_removed",
    "userdir_uncount_removed_roles",
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let c = Columns(backend);
        manager
            .create_table(
                Table::create()
                    .table(UserCounts::Table)
                    .col(c.text_not_null(UserCounts::OrganizationId))
                    .col(ColumnDef::new(UserCounts::State).small_integer().not_null())
                    .col(ColumnDef::new(UserCounts::Total).big_integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(UserCounts::OrganizationId)
                            .col(UserCounts::State),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoleUserCounts::Table)
                    .col(c.text_not_null(RoleUserCounts::RoleId))
                    .col(c.text_not_null(RoleUserCounts::OrganizationId))
                    .col(
                        ColumnDef::new(RoleUserCounts::State)
                            .small_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RoleUserCounts::Total)
                            .big_integer()
                            .not_null(),
                    )
                    .primary_key(
                        Index::create()
                            .col(RoleUserCounts::RoleId)
                            .col(RoleUserCounts::OrganizationId)
                            .col(RoleUserCounts::State),
                    )
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        for statement in BACKFILL {
            db.execute_unprepared(statement).await?;
        }
        let triggers: &[&str] = match backend {
            DbBackend::Postgres => &POSTGRES_TRIGGERS,
            _ => &SQLITE_TRIGGERS,
        };
        for statement in triggers {
            db.execute_unprepared(statement).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let backend = manager.get_database_backend();
        let db = manager.get_connection();
        for (trigger, table) in TRIGGERS {
            db.execute_unprepared(&match backend {
                DbBackend::Postgres => format!("DROP TRIGGER {trigger} ON {table}"),
                _ => format!("DROP TRIGGER {trigger}"),
            })
            .await?;
        }
        if backend == DbBackend::Postgres {
            for function in POSTGRES_FUNCTIONS {
                db.execute_unprepared(&format!("DROP FUNCTION {function}()"))
                    .await?;
            }
        }
        manager
            .drop_table(Table::drop().table(RoleUserCounts::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(UserCounts::Table).to_owned())
            .await
    }
}
