//! Users: create, patch, delete, and lifecycle state changes.

use sea_orm::sea_query::{Condition, Expr, Query};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use super::authenticators::{
    HashedPassword, NewPassword, NewUsername, check_username_scope, hashed, insert_username_row,
    username_row, username_taken,
};
use super::contact::{self, ContactKind, ContactValue};
use super::{new_id, touch, user_for_write, user_in_scope};
use crate::domain::{
    Scope, StateChange, Timestamp, UserState, check_data_size, display_name, fold_case, schema,
};
use crate::error::{Error, Result};
use crate::limits::hashing::Hashing;
use crate::store::ScopedDb;
use crate::store::authenticators::{self, Parts};
use crate::store::entities::{organization, password, user, user_schema};
use crate::store::writes::Writes;
use crate::store::writes::creates::{BatchedCreate, NewUserRows};
use crate::store::writes::guarded;
use crate::store::writes::unit::{UnitOfWork, Written};

#[derive(Clone, Debug)]
pub struct NewUser {
    pub organization_id: String,
    pub schema_id: String,
    pub data: Value,
    pub email: Option<ContactValue>,
    pub phone: Option<ContactValue>,
    pub usernames: Vec<NewUsername>,
    pub password: Option<NewPassword>,
}

pub struct Created {
    pub user_id: String,
    pub written: Written,
    pub email_code: Option<String>,
    pub phone_code: Option<String>,
}

/// Validates data: its size, then against a schema's current revision; errors name the path
/// under `data`.
fn check_data(schema: &user_schema::Model, data: &Value) -> Result<()> {
    let validator = schema::Validator::compile(&schema.json_schema)
        .map_err(|reason| Error::invalid("data", reason))?;
    check_data_with(&validator, data)
}

/// [`check_data`] with the schema compiled already (imports validate many users with one).
pub(crate) fn check_data_with(validator: &schema::Validator, data: &Value) -> Result<()> {
    check_data_size(data).map_err(|reason| Error::invalid("data", reason))?;
    validator.validate(data).map_err(|(path, reason)| {
        let field = if path.is_empty() {
            "data".to_owned()
        } else {
            format!("data.{path}")
        };
        Error::invalid(field, reason)
    })
}

/// An organization that is absent, or outside the caller's scope (which reads as absent, like a
/// user of another organization).
pub(crate) fn organization_not_found(organization_id: &str) -> Error {
    Error::NotFound(format!(
        "organizationId: no organization with id {organization_id:?}"
    ))
}

pub(crate) fn schema_not_found(schema_id: &str) -> Error {
    Error::NotFound(format!("schemaId: no user schema with id {schema_id:?}"))
}

async fn schema_of(
    connection: &impl ConnectionTrait,
    schema_id: &str,
) -> Result<user_schema::Model> {
    user_schema::Entity::find_by_id(schema_id)
        .one(connection)
        .await?
        .ok_or_else(|| schema_not_found(schema_id))
}

/// The schema of a user that may be created: its organization is in the caller's scope (out of
/// scope reads as absent, like a user of another organization) and its data fits the schema.
async fn creatable(
    connection: &impl ConnectionTrait,
    scope: &Scope,
    new: &NewUser,
) -> Result<user_schema::Model> {
    organization::Entity::find_by_id(new.organization_id.as_str())
        .one(connection)
        .await?
        .filter(|org| scope.admits(&org.id))
        .ok_or_else(|| organization_not_found(&new.organization_id))?;
    let schema = schema_of(connection, &new.schema_id).await?;
    check_data(&schema, &new.data)?;
    Ok(schema)
}

pub async fn create(db: &ScopedDb, hashing: &Hashing, new: NewUser) -> Result<Created> {
    // The organization, the schema and the data are checked before the unit begins, so the
    // serialized part of the write is its inserts alone; and a password is hashed only for a
    // user that can be created.
    let schema = creatable(db.connection(), db.scope(), &new).await?;
    let password = match new.password.clone() {
        Some(password) => Some(hashed(hashing, password).await?),
        None => None,
    };
    let mut checked = match db.writes() {
        Some(writes) => match in_batch(db, writes, &new, password.as_ref(), &schema).await? {
            InBatch::Created(created) => return Ok(created),
            // The next attempt checks in its own unit.
            InBatch::CheckAgain => None,
            InBatch::Alone => Some(schema),
        },
        None => Some(schema),
    };
    loop {
        // Nothing written: the schema got a new revision after the check. The next attempt
        // checks in its unit, where no other write can change the schema.
        if let Some(created) = write_user(db, &new, password.as_ref(), checked.take()).await? {
            return Ok(created);
        }
    }
}

/// A user to write in a batch (`store::writes::creates`): its rows, and what its caller
/// learns once they are written.
struct Batched {
    rows: NewUserRows,
    user_id: String,
    email_code: Option<String>,
    phone_code: Option<String>,
}

/// The rows of a new user for a batch, decided as [`write_user`] decides them. None for a user
/// with a username the caller may not add: written alone, its error is the one
/// `insert_username` gives, in the order it checks the names.
fn batched(
    db: &ScopedDb,
    new: &NewUser,
    password: Option<&HashedPassword>,
    schema: &user_schema::Model,
) -> Option<Batched> {
    let scoped = new.usernames.iter().enumerate().all(|(i, name)| {
        check_username_scope(db.scope(), name, &format!("usernames[{i}]")).is_ok()
    });
    if !scoped {
        return None;
    }
    // Times and the sequence are the batch's; a code's lifetime counts from now.
    let now = Timestamp::now();
    let user = new_user_row(new_id(), new, schema, now, 0);
    let mut codes = Vec::new();
    let mut code = |kind: ContactKind, contact: &Option<ContactValue>| {
        let contact = contact.as_ref()?;
        let (row, plain) = contact::new_code_for_new(&user.id, kind, contact, now)?;
        codes.push(row);
        plain
    };
    let email_code = code(ContactKind::Email, &new.email);
    let phone_code = code(ContactKind::Phone, &new.phone);
    let rows = NewUserRows {
        usernames: new
            .usernames
            .iter()
            .map(|name| username_row(&user, name, now))
            .collect(),
        password: password.map(|password| password.row(&user.id, now)),
        codes,
        payload: created_payload(new, schema),
        actor: db.actor().to_owned(),
        caller_organization: db.scope().organization().map(str::to_owned),
        user,
    };
    Some(Batched {
        user_id: rows.user.id.clone(),
        rows,
        email_code,
        phone_code,
    })
}

/// What became of a create sent to a batch.
enum InBatch {
    Created(Created),
    /// Nothing written: its schema has a new revision.
    CheckAgain,
    /// Nothing written: to be written in a unit of its own.
    Alone,
}

/// Writes a new user in the server's next batch of creates (`store::writes::creates`).
async fn in_batch(
    db: &ScopedDb,
    writes: &Writes,
    new: &NewUser,
    password: Option<&HashedPassword>,
    schema: &user_schema::Model,
) -> Result<InBatch> {
    let Some(batched) = batched(db, new, password, schema) else {
        return Ok(InBatch::Alone);
    };
    let outcome = writes
        .creates
        .create_user(&writes.group, db.connection(), batched.rows)
        .await?;
    Ok(match outcome {
        BatchedCreate::Written(written) => InBatch::Created(Created {
            user_id: batched.user_id,
            written,
            email_code: batched.email_code,
            phone_code: batched.phone_code,
        }),
        BatchedCreate::UsernameTaken(i) => {
            return Err(username_taken(
                &new.usernames[i],
                &format!("usernames[{i}]"),
            ));
        }
        BatchedCreate::SchemaRevised => InBatch::CheckAgain,
        BatchedCreate::Alone => InBatch::Alone,
    })
}

/// The `user.created` event's payload.
fn created_payload(new: &NewUser, schema: &user_schema::Model) -> Value {
    json!({
        "schemaId": schema.id,
        "schemaRevision": schema.revision,
        "usernames": new.usernames.iter().map(|u| &u.username).collect::<Vec<_>>(),
        "hasPassword": new.password.is_some(),
    })
}

/// The row of a new user created at `now` with event `sequence`, its contact values on it.
fn new_user_row(
    id: String,
    new: &NewUser,
    schema: &user_schema::Model,
    now: Timestamp,
    sequence: i64,
) -> user::Model {
    let name = display_name(&new.data);
    let mut row = user::Model {
        id,
        organization_id: new.organization_id.clone(),
        schema_id: schema.id.clone(),
        schema_revision: schema.revision,
        schema_type: schema.r#type.clone(),
        schema_type_lower: schema.type_lower.clone(),
        data: new.data.clone(),
        state: UserState::Active.number(),
        email: None,
        email_lower: None,
        email_verified: false,
        phone: None,
        phone_lower: None,
        phone_verified: false,
        name_lower: name.as_deref().map(fold_case),
        name,
        last_login: None,
        created_at: now.micros(),
        changed_at: now.micros(),
        sequence,
        // Written by the batch with the rows (`store::authenticators::document`), or rewritten
        // as the unit commits (`UnitOfWork::authenticators_changed`).
        authenticators: None,
    };
    if let Some(email) = &new.email {
        contact::set_on_new(&mut row, ContactKind::Email, email);
    }
    if let Some(phone) = &new.phone {
        contact::set_on_new(&mut row, ContactKind::Phone, phone);
    }
    row
}

/// Writes a new user in one unit. `checked` is the schema `new` was checked against before the
/// unit began: the user goes in only if the schema is still at that revision, and None is
/// returned (nothing written) if it is not. Without it, the unit reads and checks itself.
async fn write_user(
    db: &ScopedDb,
    new: &NewUser,
    password: Option<&HashedPassword>,
    checked: Option<user_schema::Model>,
) -> Result<Option<Created>> {
    let mut uow = UnitOfWork::begin(db).await?;
    let schema = match checked {
        Some(schema) => schema,
        None => creatable(uow.txn(), uow.scope(), new).await?,
    };
    let id = new_id();
    let written = uow.record(
        "user",
        &id,
        &new.organization_id,
        "user.created",
        created_payload(new, &schema),
    );
    let mut row = new_user_row(id.clone(), new, &schema, written.at, written.sequence);
    let usernames: Vec<_> = new
        .usernames
        .iter()
        .map(|name| username_row(&row, name, uow.now()))
        .collect();
    let password_row = password.map(|password| password.row(&id, uow.now()));
    // Written with its rows, as a batch writes it: nothing to rewrite as the unit commits.
    row.authenticators = authenticators::document(Parts {
        usernames: &usernames,
        password: password_row.as_ref(),
        ..Parts::default()
    });
    let mut current_revision = Query::select();
    current_revision
        .expr(Expr::val(1))
        .from(user_schema::Entity)
        .and_where(user_schema::Column::Id.eq(schema.id.as_str()))
        .and_where(user_schema::Column::Revision.eq(schema.revision));
    let unchanged = Condition::all().add(Expr::exists(current_revision));
    if !guarded::insert_where(uow.txn(), user::ActiveModel::from(row.clone()), unchanged).await? {
        // Dropping the unit rolls back its event.
        return Ok(None);
    }
    // Checked in order, each as `insert_username` checks it.
    for (i, (name, username)) in new.usernames.iter().zip(usernames).enumerate() {
        let field = format!("usernames[{i}]");
        check_username_scope(uow.scope(), name, &field)?;
        insert_username_row(&uow, username, name, &field).await?;
    }
    if let Some(password) = password_row {
        password::Entity::insert(password::ActiveModel::from(password))
            .exec_without_returning(uow.txn())
            .await?;
    }
    let email_code = match &new.email {
        Some(email) => contact::issue_for_new(&uow, &id, ContactKind::Email, email).await?,
        None => None,
    };
    let phone_code = match &new.phone {
        Some(phone) => contact::issue_for_new(&uow, &id, ContactKind::Phone, phone).await?,
        None => None,
    };
    uow.commit().await?;
    Ok(Some(Created {
        user_id: id,
        written,
        email_code,
        phone_code,
    }))
}

#[derive(Clone, Debug, Default)]
pub struct UserPatch {
    pub data: Option<Value>,
    pub email: Option<ContactValue>,
    pub phone: Option<ContactValue>,
}

pub struct Patched {
    pub written: Written,
    pub email_code: Option<String>,
    pub phone_code: Option<String>,
}

pub async fn patch(db: &ScopedDb, user_id: &str, patch: UserPatch) -> Result<Patched> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    if let Some(data) = &patch.data {
        // New data follows the schema's current revision.
        let schema = schema_of(uow.txn(), &user.schema_id).await?;
        check_data(&schema, data)?;
        user::Entity::update(user::ActiveModel {
            id: Set(user.id.clone()),
            data: Set(data.clone()),
            name: Set(display_name(data)),
            name_lower: Set(display_name(data).as_deref().map(fold_case)),
            schema_revision: Set(schema.revision),
            schema_type: Set(schema.r#type.clone()),
            schema_type_lower: Set(schema.type_lower.clone()),
            ..Default::default()
        })
        .exec(uow.txn())
        .await?;
    }
    let email_code = match &patch.email {
        Some(email) => contact::apply(&uow, &user.id, ContactKind::Email, email).await?,
        None => None,
    };
    let phone_code = match &patch.phone {
        Some(phone) => contact::apply(&uow, &user.id, ContactKind::Phone, phone).await?,
        None => None,
    };
    let payload = json!({
        "data": patch.data.is_some(),
        "email": patch.email.as_ref().map(|e| contact::event_payload(ContactKind::Email, e)),
        "phone": patch.phone.as_ref().map(|p| contact::event_payload(ContactKind::Phone, p)),
    });
    let written = touch(&mut uow, &user, "user.patched", payload).await?;
    uow.commit().await?;
    Ok(Patched {
        written,
        email_code,
        phone_code,
    })
}

/// Removes the user with every authenticator, code and role assignment (as ZITADEL removes a
/// user from its projections). The event log keeps the history; usernames are free again.
pub async fn delete(db: &ScopedDb, user_id: &str) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_in_scope(&uow, user_id).await?;
    let written = uow.record(
        "user",
        &user.id,
        &user.organization_id,
        "user.removed",
        json!({}),
    );
    user::Entity::delete_by_id(user.id.as_str())
        .exec(uow.txn())
        .await?;
    uow.commit().await?;
    Ok(written)
}

pub async fn change_state(db: &ScopedDb, user_id: &str, change: StateChange) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_in_scope(&uow, user_id).await?;
    let current = UserState::from_number(user.state.into()).ok_or_else(|| {
        Error::FailedPrecondition(format!("userId: the user has unknown state {}", user.state))
    })?;
    let next = current
        .apply(change)
        .map_err(|reason| Error::FailedPrecondition(format!("userId: {reason}")))?;
    user::Entity::update_many()
        .col_expr(user::Column::State, Expr::value(next.number()))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(uow.txn())
        .await?;
    let event = match change {
        StateChange::Deactivate => "user.deactivated",
        StateChange::Reactivate => "user.reactivated",
        StateChange::Lock => "user.locked",
        StateChange::Unlock => "user.unlocked",
    };
    let written = touch(&mut uow, &user, event, json!({})).await?;
    uow.commit().await?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use sea_orm::PaginatorTrait;

    use super::*;
    use crate::command::directory;
    use crate::store::entities::event;

    /// A schema read before the unit, then given a revision the data no longer fits: the write
    /// must not go in against the stale check, and the create must then refuse the data.
    #[tokio::test]
    async fn a_schema_revised_after_the_check_is_checked_again() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("r.db").display());
        let connection = crate::store::connect(&url).await.unwrap();
        crate::store::migrate(&connection).await.unwrap();
        let db = ScopedDb::instance(connection.clone());
        let (organization_id, _) = directory::create_organization(&db, "org".into())
            .await
            .unwrap();
        let open = json!({"type": "object"});
        let (schema_id, _) = directory::create_schema(&db, "person".into(), open)
            .await
            .unwrap();
        let new = NewUser {
            organization_id,
            schema_id: schema_id.clone(),
            data: json!({"givenName": "Ada"}),
            email: None,
            phone: None,
            usernames: Vec::new(),
            password: None,
        };
        let stale = creatable(db.connection(), db.scope(), &new).await.unwrap();
        let strict = json!({"type": "object", "required": ["familyName"]});
        directory::update_schema(&db, &schema_id, None, Some(strict))
            .await
            .unwrap();
        let events = event::Entity::find().count(&connection).await.unwrap();

        let written = write_user(&db, &new, None, Some(stale)).await.unwrap();
        assert!(written.is_none(), "written against the stale revision");
        assert_eq!(user::Entity::find().count(&connection).await.unwrap(), 0);
        assert_eq!(
            event::Entity::find().count(&connection).await.unwrap(),
            events,
            "the unit's event was rolled back"
        );
        let refused = create(&db, &Hashing::new(Default::default()).unwrap(), new).await;
        assert!(
            matches!(&refused, Err(Error::InvalidArgument { field, .. }) if field == "data"),
            "{:?}",
            refused.err()
        );
    }
}
