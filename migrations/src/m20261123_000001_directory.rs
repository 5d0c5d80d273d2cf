//! The directory: organizations, user schemas, users, their authenticators and the event log.

use sea_orm_migration::prelude::*;

use crate::columns::Columns;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261123_000001_directory"
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let c = Columns(manager.get_database_backend());
        for table in tables(c) {
            manager.create_table(table).await?;
        }
        for index in indexes() {
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            Events::Table.into_iden(),
            IdpLinks::Table.into_iden(),
            AuthenticationKeys::Table.into_iden(),
            OtpEmails::Table.into_iden(),
            OtpSms::Table.into_iden(),
            Totps::Table.into_iden(),
            WebauthnCredentials::Table.into_iden(),
            Passwords::Table.into_iden(),
            Usernames::Table.into_iden(),
            Users::Table.into_iden(),
            UserSchemaRevisions::Table.into_iden(),
            UserSchemas::Table.into_iden(),
            Organizations::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}

fn user_fk(from: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(from, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn tables(c: Columns) -> Vec<TableCreateStatement> {
    vec![
        Table::create()
            .table(Organizations::Table)
            .col(c.text_pk(Organizations::Id))
            .col(c.text_not_null(Organizations::Name))
            .col(c.text_not_null(Organizations::NameLower))
            .col(c.timestamp(Organizations::CreatedAt))
            .col(c.timestamp(Organizations::ChangedAt))
            .col(c.big_integer(Organizations::Sequence))
            .to_owned(),
        Table::create()
            .table(UserSchemas::Table)
            .col(c.text_pk(UserSchemas::Id))
            .col(c.text_not_null(UserSchemas::Type))
            .col(c.text_not_null(UserSchemas::TypeLower))
            .col(c.integer(UserSchemas::Revision))
            .col(c.json(UserSchemas::JsonSchema))
            .col(c.timestamp(UserSchemas::CreatedAt))
            .col(c.timestamp(UserSchemas::ChangedAt))
            .col(c.big_integer(UserSchemas::Sequence))
            .to_owned(),
        Table::create()
            .table(UserSchemaRevisions::Table)
            .col(c.text_not_null(UserSchemaRevisions::SchemaId))
            .col(c.integer(UserSchemaRevisions::Revision))
            .col(c.text_not_null(UserSchemaRevisions::Type))
            .col(c.json(UserSchemaRevisions::JsonSchema))
            .col(c.timestamp(UserSchemaRevisions::CreatedAt))
            .primary_key(
                Index::create()
                    .col(UserSchemaRevisions::SchemaId)
                    .col(UserSchemaRevisions::Revision),
            )
            .foreign_key(
                ForeignKey::create()
                    .from(UserSchemaRevisions::Table, UserSchemaRevisions::SchemaId)
                    .to(UserSchemas::Table, UserSchemas::Id)
                    .on_delete(ForeignKeyAction::Cascade),
            )
            .to_owned(),
        Table::create()
            .table(Users::Table)
            .col(c.text_pk(Users::Id))
            .col(c.text_not_null(Users::OrganizationId))
            .col(c.text_not_null(Users::SchemaId))
            .col(c.integer(Users::SchemaRevision))
            .col(c.text_not_null(Users::SchemaType))
            .col(c.text_not_null(Users::SchemaTypeLower))
            .col(c.json(Users::Data))
            .col(ColumnDef::new(Users::State).small_integer().not_null())
            .col(c.text(Users::Email))
            .col(c.text(Users::EmailLower))
            .col(c.boolean(Users::EmailVerified))
            .col(c.text(Users::Phone))
            .col(c.text(Users::PhoneLower))
            .col(c.boolean(Users::PhoneVerified))
            .col(c.timestamp_null(Users::LastLogin))
            .col(c.timestamp(Users::CreatedAt))
            .col(c.timestamp(Users::ChangedAt))
            .col(c.big_integer(Users::Sequence))
            .foreign_key(
                ForeignKey::create()
                    .from(Users::Table, Users::OrganizationId)
                    .to(Organizations::Table, Organizations::Id),
            )
            .foreign_key(
                ForeignKey::create()
                    .from(Users::Table, (Users::SchemaId, Users::SchemaRevision))
                    .to(
                        UserSchemaRevisions::Table,
                        (UserSchemaRevisions::SchemaId, UserSchemaRevisions::Revision),
                    ),
            )
            .to_owned(),
        Table::create()
            .table(Usernames::Table)
            .col(c.text_pk(Usernames::Id))
            .col(c.text_not_null(Usernames::UserId))
            .col(c.text_not_null(Usernames::OrganizationId))
            .col(c.text_not_null(Usernames::Username))
            .col(c.text_not_null(Usernames::UsernameLower))
            .col(c.boolean(Usernames::IsOrganizationSpecific))
            .col(c.text_not_null(Usernames::UniquenessScope))
            .col(c.timestamp(Usernames::CreatedAt))
            .foreign_key(&mut user_fk(Usernames::Table, Usernames::UserId))
            .to_owned(),
        Table::create()
            .table(Passwords::Table)
            .col(c.text_pk(Passwords::UserId))
            .col(c.text_not_null(Passwords::Hash))
            .col(c.timestamp(Passwords::ChangedAt))
            .foreign_key(&mut user_fk(Passwords::Table, Passwords::UserId))
            .to_owned(),
        Table::create()
            .table(WebauthnCredentials::Table)
            .col(c.text_pk(WebauthnCredentials::Id))
            .col(c.text_not_null(WebauthnCredentials::UserId))
            .col(c.text_not_null(WebauthnCredentials::Name))
            .col(c.boolean(WebauthnCredentials::IsVerified))
            .col(c.boolean(WebauthnCredentials::UserVerified))
            .col(
                ColumnDef::new(WebauthnCredentials::Credential)
                    .json()
                    .null(),
            )
            .col(c.timestamp(WebauthnCredentials::CreatedAt))
            .foreign_key(&mut user_fk(
                WebauthnCredentials::Table,
                WebauthnCredentials::UserId,
            ))
            .to_owned(),
        Table::create()
            .table(Totps::Table)
            .col(c.text_pk(Totps::Id))
            .col(c.text_not_null(Totps::UserId))
            .col(c.text_not_null(Totps::Name))
            .col(c.text_not_null(Totps::Secret))
            .col(c.boolean(Totps::IsVerified))
            .col(c.timestamp(Totps::CreatedAt))
            .foreign_key(&mut user_fk(Totps::Table, Totps::UserId))
            .to_owned(),
        Table::create()
            .table(OtpSms::Table)
            .col(c.text_pk(OtpSms::Id))
            .col(c.text_not_null(OtpSms::UserId))
            .col(c.text_not_null(OtpSms::Phone))
            .col(c.boolean(OtpSms::IsVerified))
            .col(c.timestamp(OtpSms::CreatedAt))
            .foreign_key(&mut user_fk(OtpSms::Table, OtpSms::UserId))
            .to_owned(),
        Table::create()
            .table(OtpEmails::Table)
            .col(c.text_pk(OtpEmails::Id))
            .col(c.text_not_null(OtpEmails::UserId))
            .col(c.text_not_null(OtpEmails::Address))
            .col(c.boolean(OtpEmails::IsVerified))
            .col(c.timestamp(OtpEmails::CreatedAt))
            .foreign_key(&mut user_fk(OtpEmails::Table, OtpEmails::UserId))
            .to_owned(),
        Table::create()
            .table(AuthenticationKeys::Table)
            .col(c.text_pk(AuthenticationKeys::Id))
            .col(c.text_not_null(AuthenticationKeys::UserId))
            .col(
                ColumnDef::new(AuthenticationKeys::KeyType)
                    .small_integer()
                    .not_null(),
            )
            .col(c.text_not_null(AuthenticationKeys::PublicKey))
            .col(c.timestamp_null(AuthenticationKeys::ExpirationDate))
            .col(c.timestamp(AuthenticationKeys::CreatedAt))
            .col(c.timestamp(AuthenticationKeys::ChangedAt))
            .col(c.big_integer(AuthenticationKeys::Sequence))
            .foreign_key(&mut user_fk(
                AuthenticationKeys::Table,
                AuthenticationKeys::UserId,
            ))
            .to_owned(),
        Table::create()
            .table(IdpLinks::Table)
            .col(c.text_pk(IdpLinks::Id))
            .col(c.text_not_null(IdpLinks::UserId))
            .col(c.text_not_null(IdpLinks::IdpId))
            .col(c.text_not_null(IdpLinks::IdpName))
            .col(c.text_not_null(IdpLinks::ExternalUserId))
            .col(c.text_not_null(IdpLinks::ExternalUsername))
            .col(c.timestamp(IdpLinks::CreatedAt))
            .foreign_key(&mut user_fk(IdpLinks::Table, IdpLinks::UserId))
            .to_owned(),
        Table::create()
            .table(Events::Table)
            // Assigned by the writer under a lock, not by an auto-increment: the sequence is
            // gapless and follows commit order, which a database sequence does not promise.
            .col(
                ColumnDef::new(Events::Sequence)
                    .big_integer()
                    .not_null()
                    .primary_key(),
            )
            .col(c.timestamp(Events::CreatedAt))
            .col(c.text_not_null(Events::AggregateType))
            .col(c.text_not_null(Events::AggregateId))
            .col(c.text_not_null(Events::ResourceOwner))
            .col(c.text_not_null(Events::EventType))
            .col(c.json(Events::Payload))
            .to_owned(),
    ]
}

/// Every searchable and sortable column is indexed. Sort indexes end with the id, the
/// tie-breaker of every order, so a page is read in index order.
fn indexes() -> Vec<IndexCreateStatement> {
    fn index(
        name: &str,
        table: impl IntoIden + 'static,
        cols: Vec<DynIden>,
    ) -> IndexCreateStatement {
        let mut statement = Index::create();
        statement.name(name).table(table);
        for col in cols {
            statement.col(col);
        }
        statement.to_owned()
    }
    macro_rules! cols { ($($c:expr),+) => { vec![$($c.into_iden()),+] } }

    let mut list = vec![
        index(
            "idx_organizations_name_lower",
            Organizations::Table,
            cols![Organizations::NameLower],
        ),
        index(
            "idx_users_organization",
            Users::Table,
            cols![Users::OrganizationId, Users::Id],
        ),
        index(
            "idx_users_created",
            Users::Table,
            cols![Users::CreatedAt, Users::Id],
        ),
        index(
            "idx_users_changed",
            Users::Table,
            cols![Users::ChangedAt, Users::Id],
        ),
        index("idx_users_email", Users::Table, cols![Users::Email]),
        index(
            "idx_users_email_lower",
            Users::Table,
            cols![Users::EmailLower, Users::Id],
        ),
        index(
            "idx_users_phone",
            Users::Table,
            cols![Users::Phone, Users::Id],
        ),
        index(
            "idx_users_phone_lower",
            Users::Table,
            cols![Users::PhoneLower],
        ),
        index(
            "idx_users_state",
            Users::Table,
            cols![Users::State, Users::Id],
        ),
        index(
            "idx_users_schema",
            Users::Table,
            cols![Users::SchemaId, Users::Id],
        ),
        index(
            "idx_users_schema_type",
            Users::Table,
            cols![Users::SchemaType],
        ),
        index(
            "idx_users_schema_type_lower",
            Users::Table,
            cols![Users::SchemaTypeLower, Users::Id],
        ),
        index(
            "idx_users_last_login",
            Users::Table,
            cols![Users::LastLogin, Users::Id],
        ),
        index(
            "idx_usernames_user",
            Usernames::Table,
            cols![Usernames::UserId],
        ),
        index(
            "idx_usernames_username",
            Usernames::Table,
            cols![Usernames::Username],
        ),
        index(
            "idx_usernames_username_lower",
            Usernames::Table,
            cols![Usernames::UsernameLower],
        ),
        index(
            "idx_webauthn_user",
            WebauthnCredentials::Table,
            cols![WebauthnCredentials::UserId],
        ),
        index("idx_totps_user", Totps::Table, cols![Totps::UserId]),
        index("idx_otp_sms_user", OtpSms::Table, cols![OtpSms::UserId]),
        index(
            "idx_otp_emails_user",
            OtpEmails::Table,
            cols![OtpEmails::UserId],
        ),
        index(
            "idx_authentication_keys_user",
            AuthenticationKeys::Table,
            cols![AuthenticationKeys::UserId],
        ),
        index(
            "idx_idp_links_user",
            IdpLinks::Table,
            cols![IdpLinks::UserId],
        ),
        index(
            "idx_events_aggregate",
            Events::Table,
            cols![Events::AggregateId, Events::Sequence],
        ),
    ];
    // Usernames are unique ignoring case within their scope: "*" for instance-wide names, the
    // organization id for organization-specific ones. The database enforces it, so concurrent
    // writers cannot both win.
    list.push(
        index(
            "uq_usernames_scope_name",
            Usernames::Table,
            cols![Usernames::UniquenessScope, Usernames::UsernameLower],
        )
        .unique()
        .to_owned(),
    );
    list.push(
        index(
            "uq_user_schemas_type",
            UserSchemas::Table,
            cols![UserSchemas::TypeLower],
        )
        .unique()
        .to_owned(),
    );
    list.push(
        index(
            "uq_idp_links_external",
            IdpLinks::Table,
            cols![IdpLinks::IdpId, IdpLinks::ExternalUserId],
        )
        .unique()
        .to_owned(),
    );
    list
}

#[derive(DeriveIden)]
enum Organizations {
    Table,
    Id,
    Name,
    NameLower,
    CreatedAt,
    ChangedAt,
    Sequence,
}

#[derive(DeriveIden)]
enum UserSchemas {
    Table,
    Id,
    Type,
    TypeLower,
    Revision,
    JsonSchema,
    CreatedAt,
    ChangedAt,
    Sequence,
}

#[derive(DeriveIden)]
enum UserSchemaRevisions {
    Table,
    SchemaId,
    Revision,
    Type,
    JsonSchema,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
    OrganizationId,
    SchemaId,
    SchemaRevision,
    SchemaType,
    SchemaTypeLower,
    Data,
    State,
    Email,
    EmailLower,
    EmailVerified,
    Phone,
    PhoneLower,
    PhoneVerified,
    LastLogin,
    CreatedAt,
    ChangedAt,
    Sequence,
}

#[derive(DeriveIden)]
enum Usernames {
    Table,
    Id,
    UserId,
    OrganizationId,
    Username,
    UsernameLower,
    IsOrganizationSpecific,
    UniquenessScope,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Passwords {
    Table,
    UserId,
    Hash,
    ChangedAt,
}

#[derive(DeriveIden)]
enum WebauthnCredentials {
    Table,
    Id,
    UserId,
    Name,
    IsVerified,
    UserVerified,
    Credential,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Totps {
    Table,
    Id,
    UserId,
    Name,
    Secret,
    IsVerified,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OtpSms {
    Table,
    Id,
    UserId,
    Phone,
    IsVerified,
    CreatedAt,
}

#[derive(DeriveIden)]
enum OtpEmails {
    Table,
    Id,
    UserId,
    Address,
    IsVerified,
    CreatedAt,
}

#[derive(DeriveIden)]
enum AuthenticationKeys {
    Table,
    Id,
    UserId,
    KeyType,
    PublicKey,
    ExpirationDate,
    CreatedAt,
    ChangedAt,
    Sequence,
}

#[derive(DeriveIden)]
enum IdpLinks {
    Table,
    Id,
    UserId,
    IdpId,
    IdpName,
    ExternalUserId,
    ExternalUsername,
    CreatedAt,
}

#[derive(DeriveIden)]
enum Events {
    Table,
    Sequence,
    CreatedAt,
    AggregateType,
    AggregateId,
    ResourceOwner,
    EventType,
    Payload,
}
