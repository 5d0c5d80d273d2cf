//! Each user's authenticators as one JSON document on the user's row (`users.authenticators`),
//! so that a page of users reads them with its rows instead of probing eight tables for each
//! user (the store's `authenticators` module keeps it in step with the tables, and its docs say
//! why).
//!
//! `up` fills the documents of the users already there with the statement the store's
//! `authenticators::refresh` runs for one user, for all of them: the union of the user's rows
//! of the eight authenticator tables, one JSON array of entries `[kind, id, order, text ×4,
//! flag ×2, number ×3]` each, aggregated per user. A test (`tests/api/authenticator_documents.rs`)
//! migrates a populated directory down and up again and checks that every user reads the same.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261207_000013_authenticator_documents"
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Authenticators,
}

/// One user's authenticator rows (the user is `users.id` of the enclosing UPDATE), each kind
/// filling the slots the store's `authenticators::union` fills. The first branch types the
/// empty slots: PostgreSQL resolves a union's column types branch by branch.
const UNION: &str = "\
    SELECT 1 AS kind, id, created_at AS sort_at, username AS text_1, \
           CAST(NULL AS TEXT) AS text_2, CAST(NULL AS TEXT) AS text_3, \
           CAST(NULL AS TEXT) AS text_4, is_organization_specific AS flag_1, \
           CAST(NULL AS BOOLEAN) AS flag_2, CAST(NULL AS BIGINT) AS number_1, \
           CAST(NULL AS BIGINT) AS number_2, CAST(NULL AS BIGINT) AS number_3 \
      FROM usernames WHERE user_id = users.id \
    UNION ALL SELECT 2, user_id, changed_at, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL \
      FROM passwords WHERE user_id = users.id \
    UNION ALL SELECT 3, id, created_at, name, NULL, NULL, NULL, is_verified, user_verified, \
           NULL, NULL, NULL \
      FROM webauthn_credentials WHERE user_id = users.id \
    UNION ALL SELECT 4, id, created_at, name, NULL, NULL, NULL, is_verified, NULL, NULL, NULL, NULL \
      FROM totps WHERE user_id = users.id \
    UNION ALL SELECT 5, id, created_at, phone, NULL, NULL, NULL, is_verified, NULL, NULL, NULL, NULL \
      FROM otp_sms WHERE user_id = users.id \
    UNION ALL SELECT 6, id, created_at, address, NULL, NULL, NULL, is_verified, NULL, \
           NULL, NULL, NULL \
      FROM otp_emails WHERE user_id = users.id \
    UNION ALL SELECT 7, id, created_at, NULL, NULL, NULL, NULL, NULL, NULL, expiration_date, \
           changed_at, sequence \
      FROM authentication_keys WHERE user_id = users.id \
    UNION ALL SELECT 8, id, created_at, idp_id, idp_name, external_user_id, external_username, \
           NULL, NULL, NULL, NULL, NULL \
      FROM idp_links WHERE user_id = users.id";

const SLOTS: &str = "kind, id, sort_at, text_1, text_2, text_3, text_4, flag_1, flag_2, \
                     number_1, number_2, number_3";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .add_column(ColumnDef::new(Users::Authenticators).text())
                    .to_owned(),
            )
            .await?;
        let document = match manager.get_database_backend() {
            DbBackend::Postgres => format!("json_agg(json_build_array({SLOTS}))::text"),
            _ => format!("json_group_array(json_array({SLOTS}))"),
        };
        manager
            .get_connection()
            .execute_unprepared(&format!(
                "UPDATE users SET authenticators = \
                 (SELECT {document} FROM ({UNION}) AS authenticator)"
            ))
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(Users::Table)
                    .drop_column(Users::Authenticators)
                    .to_owned(),
            )
            .await
    }
}
