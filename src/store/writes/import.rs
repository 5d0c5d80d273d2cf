//! Bulk import of whole objects, as `userdir seed` writes them: each call is one transaction
//! that inserts the rows in large multi-row statements and appends one event per object.

use sea_orm::{
    ActiveModelTrait, DatabaseConnection, DatabaseTransaction, DbErr, EntityTrait, IntoActiveModel,
    Iterable,
};
use serde_json::json;

use super::events::{self, NewEvent};
use crate::domain::{Timestamp, display_name, fold_case};
use crate::store::begin_write;
use crate::store::entities::{
    authentication_key, idp_link, organization, otp_email, otp_sms, password, totp, user,
    user_schema, user_schema_revision, username, webauthn_credential,
};

/// The actor of imported events.
const SEED: &str = "seed";

/// A user with every authenticator, as stored. Sequences are assigned on import.
#[derive(Clone, Debug)]
pub struct UserImport {
    pub user: user::Model,
    pub usernames: Vec<username::Model>,
    pub password: Option<password::Model>,
    pub web_auth_n: Vec<webauthn_credential::Model>,
    pub totps: Vec<totp::Model>,
    pub otp_sms: Vec<otp_sms::Model>,
    pub otp_emails: Vec<otp_email::Model>,
    pub authentication_keys: Vec<authentication_key::Model>,
    pub idp_links: Vec<idp_link::Model>,
}

pub async fn import_organizations(
    db: &DatabaseConnection,
    mut organizations: Vec<organization::Model>,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    let first = events::lock(&txn)
        .await?
        .map_or(1, |(sequence, _)| sequence + 1);
    let mut log = Vec::with_capacity(organizations.len());
    for (sequence, org) in (first..).zip(organizations.iter_mut()) {
        org.sequence = sequence;
        log.push(NewEvent {
            created_at: Timestamp::from_micros(org.created_at),
            aggregate_type: "organization",
            aggregate_id: org.id.clone(),
            resource_owner: org.id.clone(),
            event_type: "organization.added",
            payload: json!({ "name": org.name }),
            organization: Some(org.id.clone()),
            actor: SEED.to_owned(),
        });
    }
    events::append(&txn, first, log).await?;
    insert_all(&txn, organizations).await?;
    txn.commit().await
}

/// Imports schemas at their current revision, with that revision's history row.
pub async fn import_schemas(
    db: &DatabaseConnection,
    mut schemas: Vec<user_schema::Model>,
) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    let first = events::lock(&txn)
        .await?
        .map_or(1, |(sequence, _)| sequence + 1);
    let mut log = Vec::with_capacity(schemas.len());
    let mut revisions = Vec::with_capacity(schemas.len());
    for (sequence, schema) in (first..).zip(schemas.iter_mut()) {
        schema.sequence = sequence;
        revisions.push(user_schema_revision::Model {
            schema_id: schema.id.clone(),
            revision: schema.revision,
            r#type: schema.r#type.clone(),
            json_schema: schema.json_schema.clone(),
            created_at: schema.changed_at,
        });
        log.push(NewEvent {
            created_at: Timestamp::from_micros(schema.created_at),
            aggregate_type: "user_schema",
            aggregate_id: schema.id.clone(),
            resource_owner: String::new(),
            event_type: "user_schema.created",
            payload: json!({ "type": schema.r#type, "revision": schema.revision }),
            organization: None,
            actor: SEED.to_owned(),
        });
    }
    events::append(&txn, first, log).await?;
    insert_all(&txn, schemas).await?;
    insert_all(&txn, revisions).await?;
    txn.commit().await
}

pub async fn import_users(db: &DatabaseConnection, batch: Vec<UserImport>) -> Result<(), DbErr> {
    let txn = begin_write(db).await?;
    let first = events::lock(&txn)
        .await?
        .map_or(1, |(sequence, _)| sequence + 1);
    let mut log = Vec::with_capacity(batch.len());
    let mut tables = Tables::default();
    for (sequence, mut import) in (first..).zip(batch) {
        import.user.sequence = sequence;
        import.user.name = display_name(&import.user.data);
        import.user.name_lower = import.user.name.as_deref().map(fold_case);
        log.push(NewEvent {
            created_at: Timestamp::from_micros(import.user.created_at),
            aggregate_type: "user",
            aggregate_id: import.user.id.clone(),
            resource_owner: import.user.organization_id.clone(),
            event_type: "user.created",
            payload: json!({
                "schemaId": import.user.schema_id,
                "schemaRevision": import.user.schema_revision,
                "usernames": import.usernames.len(),
            }),
            organization: Some(import.user.organization_id.clone()),
            actor: SEED.to_owned(),
        });
        for key in &mut import.authentication_keys {
            key.sequence = sequence;
        }
        for link in &mut import.idp_links {
            link.organization_id = import.user.organization_id.clone();
        }
        tables.push(import);
    }
    events::append(&txn, first, log).await?;
    tables.insert(&txn).await?;
    txn.commit().await
}

/// Rows of a batch, grouped by table.
#[derive(Default)]
struct Tables {
    users: Vec<user::Model>,
    usernames: Vec<username::Model>,
    passwords: Vec<password::Model>,
    web_auth_n: Vec<webauthn_credential::Model>,
    totps: Vec<totp::Model>,
    otp_sms: Vec<otp_sms::Model>,
    otp_emails: Vec<otp_email::Model>,
    authentication_keys: Vec<authentication_key::Model>,
    idp_links: Vec<idp_link::Model>,
}

impl Tables {
    fn push(&mut self, import: UserImport) {
        self.users.push(import.user);
        self.usernames.extend(import.usernames);
        self.passwords.extend(import.password);
        self.web_auth_n.extend(import.web_auth_n);
        self.totps.extend(import.totps);
        self.otp_sms.extend(import.otp_sms);
        self.otp_emails.extend(import.otp_emails);
        self.authentication_keys.extend(import.authentication_keys);
        self.idp_links.extend(import.idp_links);
    }

    async fn insert(self, txn: &DatabaseTransaction) -> Result<(), DbErr> {
        // Parents first: the authenticator tables reference users.
        insert_all(txn, self.users).await?;
        insert_all(txn, self.usernames).await?;
        insert_all(txn, self.passwords).await?;
        insert_all(txn, self.web_auth_n).await?;
        insert_all(txn, self.totps).await?;
        insert_all(txn, self.otp_sms).await?;
        insert_all(txn, self.otp_emails).await?;
        insert_all(txn, self.authentication_keys).await?;
        insert_all(txn, self.idp_links).await
    }
}

/// Bound parameters per statement, below SQLite's limit of 32766 (PostgreSQL allows 65535).
const MAX_PARAMETERS: usize = 30_000;

/// Inserts models in multi-row statements that stay under the parameter limit.
async fn insert_all<M>(txn: &DatabaseTransaction, models: Vec<M>) -> Result<(), DbErr>
where
    M: IntoActiveModel<<<M as sea_orm::ModelTrait>::Entity as EntityTrait>::ActiveModel>
        + sea_orm::ModelTrait,
    <<M as sea_orm::ModelTrait>::Entity as EntityTrait>::ActiveModel: ActiveModelTrait + Send,
{
    type Entity<M> = <M as sea_orm::ModelTrait>::Entity;
    let columns = <Entity<M> as EntityTrait>::Column::iter().count().max(1);
    let rows_per_statement = (MAX_PARAMETERS / columns).max(1);
    let mut models = models.into_iter().peekable();
    while models.peek().is_some() {
        let chunk: Vec<_> = models
            .by_ref()
            .take(rows_per_statement)
            .map(IntoActiveModel::into_active_model)
            .collect();
        Entity::<M>::insert_many(chunk)
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}
