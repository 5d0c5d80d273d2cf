//! What the write API needs beyond the directory: verification codes, roles and their
//! assignments.

use sea_orm_migration::prelude::*;

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000002_writes"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        // One pending code per purpose and owner: setting a new email replaces the old code.
        manager
            .create_table(
                Table::create()
                    .table(VerificationCodes::Table)
                    .col(c.text_not_null(VerificationCodes::OwnerId))
                    .col(c.text_not_null(VerificationCodes::Purpose))
                    .col(c.text_not_null(VerificationCodes::UserId))
                    .col(c.text_not_null(VerificationCodes::CodeHash))
                    .col(c.timestamp(VerificationCodes::ExpiresAt))
                    .col(c.integer(VerificationCodes::FailedAttempts))
                    .col(c.timestamp(VerificationCodes::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(VerificationCodes::OwnerId)
                            .col(VerificationCodes::Purpose),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(VerificationCodes::Table, VerificationCodes::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_verification_codes_user")
                    .table(VerificationCodes::Table)
                    .col(VerificationCodes::UserId)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Passwords::Table)
                    .add_column(c.boolean(Passwords::ChangeRequired))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(Roles::Table)
                    .col(c.text_pk(Roles::Id))
                    .col(c.text_not_null(Roles::Name))
                    .col(c.text_not_null(Roles::NameLower))
                    .col(c.text_not_null(Roles::Description))
                    .col(c.timestamp(Roles::CreatedAt))
                    .col(c.timestamp(Roles::ChangedAt))
                    .col(c.big_integer(Roles::Sequence))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_roles_name")
                    .table(Roles::Table)
                    .col(Roles::NameLower)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RoleAssignments::Table)
                    .col(c.text_not_null(RoleAssignments::RoleId))
                    .col(c.text_not_null(RoleAssignments::UserId))
                    .col(c.timestamp(RoleAssignments::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(RoleAssignments::RoleId)
                            .col(RoleAssignments::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RoleAssignments::Table, RoleAssignments::RoleId)
                            .to(Roles::Table, Roles::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(RoleAssignments::Table, RoleAssignments::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_role_assignments_user")
                    .table(RoleAssignments::Table)
                    .col(RoleAssignments::UserId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            RoleAssignments::Table.into_iden(),
            Roles::Table.into_iden(),
            VerificationCodes::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(Passwords::Table)
                    .drop_column(Passwords::ChangeRequired)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Passwords {
    Table,
    ChangeRequired,
}

#[derive(DeriveIden)]
enum VerificationCodes {
    Table,
    OwnerId,
    Purpose,
    UserId,
    CodeHash,
    ExpiresAt,
    FailedAttempts,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Roles {
    Table,
    Id,
    Name,
    NameLower,
    Description,
    CreatedAt,
    ChangedAt,
    Sequence,
}

#[derive(DeriveIden)]
enum RoleAssignments {
    Table,
    RoleId,
    UserId,
    CreatedAt,
}
