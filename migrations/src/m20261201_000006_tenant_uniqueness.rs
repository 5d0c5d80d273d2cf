//! Tenancy: identity-provider links are unique per organization, and every event records the
//! organization whose stream it belongs to, its position in that stream, and who acted.

use sea_orm_migration::prelude::*;

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261201_000006_tenant_uniqueness"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        let db = manager.get_connection();

        // IdP links carry their user's organization (users never move), so the database can
        // keep one external identity per provider and organization.
        let mut organization = c.text_not_null(IdpLinks::OrganizationId);
        organization.default("");
        manager
            .alter_table(
                Table::alter()
                    .table(IdpLinks::Table)
                    .add_column(&mut organization)
                    .to_owned(),
            )
            .await?;
        db.execute_unprepared(
            "UPDATE idp_links SET organization_id = \
             (SELECT organization_id FROM users WHERE users.id = idp_links.user_id)",
        )
        .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("uq_idp_links_external")
                    .table(IdpLinks::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_idp_links_external")
                    .table(IdpLinks::Table)
                    .col(IdpLinks::OrganizationId)
                    .col(IdpLinks::IdpId)
                    .col(IdpLinks::ExternalUserId)
                    .unique()
                    .to_owned(),
            )
            .await?;

        // Events: the organization stream (NULL for instance-level events such as schemas and
        // roles), the gapless position in it, and the acting principal ("" before this
        // migration: who acted was not recorded).
        let mut actor = c.text_not_null(Events::Actor);
        actor.default("");
        for column in [
            c.text(Events::OrganizationId),
            ColumnDef::new(Events::OrganizationSequence)
                .big_integer()
                .null()
                .to_owned(),
            actor,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        db.execute_unprepared(
            "UPDATE events SET organization_id = resource_owner WHERE resource_owner <> ''",
        )
        .await?;
        db.execute_unprepared(
            "UPDATE events SET organization_sequence = numbered.position FROM \
             (SELECT sequence, ROW_NUMBER() OVER \
              (PARTITION BY organization_id ORDER BY sequence) AS position \
              FROM events WHERE organization_id IS NOT NULL) AS numbered \
             WHERE events.sequence = numbered.sequence",
        )
        .await?;
        // The newest event of one organization, and its position at any instance sequence.
        manager
            .create_index(
                Index::create()
                    .name("uq_events_organization_sequence")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::OrganizationSequence)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_events_organization")
                    .table(Events::Table)
                    .col(Events::OrganizationId)
                    .col(Events::Sequence)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for name in ["idx_events_organization", "uq_events_organization_sequence"] {
            manager
                .drop_index(Index::drop().name(name).table(Events::Table).to_owned())
                .await?;
        }
        for column in [
            Events::Actor,
            Events::OrganizationSequence,
            Events::OrganizationId,
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table(Events::Table)
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .drop_index(
                Index::drop()
                    .name("uq_idp_links_external")
                    .table(IdpLinks::Table)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("uq_idp_links_external")
                    .table(IdpLinks::Table)
                    .col(IdpLinks::IdpId)
                    .col(IdpLinks::ExternalUserId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(IdpLinks::Table)
                    .drop_column(IdpLinks::OrganizationId)
                    .to_owned(),
            )
            .await
    }
}

#[derive(DeriveIden)]
enum IdpLinks {
    Table,
    OrganizationId,
    IdpId,
    ExternalUserId,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Sequence,
    OrganizationId,
    OrganizationSequence,
    Actor,
}
