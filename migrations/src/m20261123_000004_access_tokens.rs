//! Personal access tokens: stored only as a SHA-256 hash of the secret, never the secret.

use sea_orm_migration::prelude::*;

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000004_access_tokens"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        manager
            .create_table(
                Table::create()
                    .table(AccessTokens::Table)
                    .col(c.text_pk(AccessTokens::Id))
                    .col(c.text_not_null(AccessTokens::SecretHash))
                    .col(c.text_not_null(AccessTokens::Description))
                    // `admin` or comma-separated permission names.
                    .col(c.text_not_null(AccessTokens::Permissions))
                    .col(c.text(AccessTokens::OrganizationId))
                    .col(c.boolean(AccessTokens::Bootstrap))
                    .col(c.text_not_null(AccessTokens::CreatedBy))
                    .col(c.timestamp(AccessTokens::CreatedAt))
                    .col(c.timestamp_null(AccessTokens::ExpiresAt))
                    // Revoked tokens stay, so that "no token was ever minted" stays decidable.
                    .col(c.timestamp_null(AccessTokens::RevokedAt))
                    .col(c.big_integer(AccessTokens::Sequence))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_access_tokens_secret_hash")
                    .table(AccessTokens::Table)
                    .col(AccessTokens::SecretHash)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_access_tokens_organization")
                    .table(AccessTokens::Table)
                    .col(AccessTokens::OrganizationId)
                    .col(AccessTokens::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(AccessTokens::Table).to_owned())
            .await
    }
}

#[derive(DeriveIden)]
enum AccessTokens {
    Table,
    Id,
    SecretHash,
    Description,
    Permissions,
    OrganizationId,
    Bootstrap,
    CreatedBy,
    CreatedAt,
    ExpiresAt,
    RevokedAt,
    Sequence,
}
