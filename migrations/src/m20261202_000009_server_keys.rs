//! Keys every server on the database shares, by name: the key that authenticates page tokens
//! (`query.pageToken`), so that a token issued by one server is accepted by another and
//! survives restarts. A key is created by the first server that needs it (insert if absent).

use sea_orm_migration::prelude::*;

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000009_server_keys"
    }
}

#[derive(DeriveIden)]
enum ServerKeys {
    Table,
    Name,
    Secret,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        manager
            .create_table(
                Table::create()
                    .table(ServerKeys::Table)
                    .col(c.text_pk(ServerKeys::Name))
                    .col(ColumnDef::new(ServerKeys::Secret).binary().not_null())
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServerKeys::Table).to_owned())
            .await
    }
}
