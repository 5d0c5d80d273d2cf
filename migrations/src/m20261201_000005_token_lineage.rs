//! Token lineage: the token a token was minted with, so that revoking a token also revokes
//! every token minted under it.

use sea_orm_migration::prelude::*;

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000005_token_lineage"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        // Null: minted by the operator (CLI, bootstrap) or with a JWT, and for every token
        // minted before this migration.
        manager
            .alter_table(
                Table::alter()
                    .table(AccessTokens::Table)
                    .add_column(c.text(AccessTokens::ParentId))
                    .to_owned(),
            )
            .await?;
        // Revocation walks a token's descendants by this column.
        manager
            .create_index(
                Index::create()
                    .name("idx_access_tokens_parent")
                    .table(AccessTokens::Table)
                    .col(AccessTokens::ParentId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("idx_access_tokens_parent")
                    .table(AccessTokens::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AccessTokens::Table)
                    .drop_column(AccessTokens::ParentId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum AccessTokens {
    Table,
    ParentId,
}
