//! Commands: the write side. Each command validates its rules against the current state and
//! changes it in one [`UnitOfWork`]: rows and events commit together or not at all.
//! Inputs arrive already parsed (see `api::grpc::parse`); expensive work such as password
//! hashing happens before the unit begins, so the event-log lock is held briefly.

pub mod authenticators;
pub mod contact;
pub mod directory;
pub mod import;
pub mod tokens;
pub mod users;
pub mod webauthn;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::domain::{Scope, Timestamp, UserState, codes};
use crate::error::{Error, Result};
use crate::store::ScopedDb;
use crate::store::entities::{user, verification_code};
use crate::store::writes::unit::{UnitOfWork, Written};

/// A new UUIDv7: ids sort by creation time.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

pub(crate) fn user_not_found(user_id: &str) -> Error {
    Error::NotFound(format!("userId: no user with id {user_id:?}"))
}

/// The user a write applies to, if the caller's scope admits it: a user of another
/// organization is NotFound, exactly like a missing one, so ids cannot be probed.
pub(crate) async fn user_in_scope(uow: &UnitOfWork, user_id: &str) -> Result<user::Model> {
    find_user_in_scope(uow.txn(), uow.scope(), user_id).await
}

async fn find_user_in_scope(
    connection: &impl ConnectionTrait,
    scope: &Scope,
    user_id: &str,
) -> Result<user::Model> {
    user::Entity::find_by_id(user_id)
        .one(connection)
        .await?
        .filter(|user| scope.admits(&user.organization_id))
        .ok_or_else(|| user_not_found(user_id))
}

/// The user a write applies to: NotFound when absent or out of scope, FailedPrecondition when
/// deleted.
pub(crate) async fn user_for_write(uow: &UnitOfWork, user_id: &str) -> Result<user::Model> {
    writable_user(uow.txn(), uow.scope(), user_id).await
}

/// Before slow work for a write (hashing a password): the answer [`user_for_write`] would give,
/// read outside any unit. The write checks again in its own unit.
pub(crate) async fn precheck_user_for_write(db: &ScopedDb, user_id: &str) -> Result<()> {
    writable_user(db.connection(), db.scope(), user_id).await?;
    Ok(())
}

async fn writable_user(
    connection: &impl ConnectionTrait,
    scope: &Scope,
    user_id: &str,
) -> Result<user::Model> {
    let user = find_user_in_scope(connection, scope, user_id).await?;
    if user.state == UserState::Deleted.number() {
        return Err(Error::FailedPrecondition(format!(
            "userId: the user {user_id:?} is deleted"
        )));
    }
    Ok(user)
}

/// Records a user event and moves the user's sequence and change date to it.
pub(crate) async fn touch(
    uow: &mut UnitOfWork,
    user: &user::Model,
    event_type: &'static str,
    payload: Value,
) -> Result<Written> {
    let written = uow.record("user", &user.id, &user.organization_id, event_type, payload);
    user::Entity::update_many()
        .col_expr(user::Column::Sequence, Expr::value(written.sequence))
        .col_expr(user::Column::ChangedAt, Expr::value(written.at.micros()))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(uow.txn())
        .await?;
    Ok(written)
}

/// What a pending code verifies.
#[derive(Clone, Copy, Debug)]
pub(crate) enum CodePurpose {
    ContactEmail,
    ContactPhone,
    OtpSms,
    OtpEmail,
}

impl CodePurpose {
    fn key(self) -> &'static str {
        match self {
            CodePurpose::ContactEmail => "contact_email",
            CodePurpose::ContactPhone => "contact_phone",
            CodePurpose::OtpSms => "otp_sms",
            CodePurpose::OtpEmail => "otp_email",
        }
    }
}

/// Replaces the pending code of `owner_id` for `purpose` with a new one; returns the plain code.
pub(crate) async fn issue_code(
    uow: &UnitOfWork,
    user_id: &str,
    owner_id: &str,
    purpose: CodePurpose,
    kind: codes::CodeKind,
) -> Result<String> {
    discard_code(uow, owner_id, purpose).await?;
    insert_code(uow, user_id, owner_id, purpose, kind).await
}

/// Creates a code of `owner_id` for `purpose` where none is pending (an owner created in the
/// same unit); returns the plain code.
pub(crate) async fn insert_code(
    uow: &UnitOfWork,
    user_id: &str,
    owner_id: &str,
    purpose: CodePurpose,
    kind: codes::CodeKind,
) -> Result<String> {
    let (row, plain) = new_code(user_id, owner_id, purpose, kind, uow.now());
    verification_code::Entity::insert(verification_code::ActiveModel::from(row))
        .exec_without_returning(uow.txn())
        .await?;
    Ok(plain)
}

/// A new code issued at `now`: its row (the hash) and the plain code.
pub(crate) fn new_code(
    user_id: &str,
    owner_id: &str,
    purpose: CodePurpose,
    kind: codes::CodeKind,
    now: Timestamp,
) -> (verification_code::Model, String) {
    let code = codes::issue(kind, now);
    let row = verification_code::Model {
        owner_id: owner_id.to_owned(),
        purpose: purpose.key().to_owned(),
        user_id: user_id.to_owned(),
        code_hash: code.hash,
        expires_at: code.expires_at.micros(),
        failed_attempts: 0,
        created_at: now.micros(),
    };
    (row, code.plain)
}

pub(crate) async fn discard_code(
    uow: &UnitOfWork,
    owner_id: &str,
    purpose: CodePurpose,
) -> Result<()> {
    verification_code::Entity::delete_by_id((owner_id.to_owned(), purpose.key().to_owned()))
        .exec(uow.txn())
        .await?;
    Ok(())
}

/// Checks `candidate` against the pending code. A match consumes the code and returns None.
/// Otherwise returns the error for the caller, which must still commit: a wrong guess is
/// counted, and the fifth wrong guess or an expired code voids the code.
pub(crate) async fn consume_code(
    uow: &UnitOfWork,
    owner_id: &str,
    purpose: CodePurpose,
    candidate: &str,
    field: &str,
) -> Result<Option<Error>> {
    let key = (owner_id.to_owned(), purpose.key().to_owned());
    let Some(pending) = verification_code::Entity::find_by_id(key.clone())
        .one(uow.txn())
        .await?
    else {
        return Ok(Some(Error::FailedPrecondition(format!(
            "{field}: no verification code is pending; request a new one"
        ))));
    };
    if uow.now() > Timestamp::from_micros(pending.expires_at) {
        verification_code::Entity::delete_by_id(key)
            .exec(uow.txn())
            .await?;
        return Ok(Some(Error::FailedPrecondition(format!(
            "{field}: the verification code expired; request a new one"
        ))));
    }
    if codes::matches(&pending.code_hash, candidate) {
        verification_code::Entity::delete_by_id(key)
            .exec(uow.txn())
            .await?;
        return Ok(None);
    }
    let failed = pending.failed_attempts + 1;
    if failed >= codes::MAX_FAILED_ATTEMPTS {
        verification_code::Entity::delete_by_id(key)
            .exec(uow.txn())
            .await?;
        return Ok(Some(Error::FailedPrecondition(format!(
            "{field}: too many wrong codes; the code is void, request a new one"
        ))));
    }
    verification_code::Entity::update_many()
        .col_expr(
            verification_code::Column::FailedAttempts,
            Expr::value(failed),
        )
        .filter(verification_code::Column::OwnerId.eq(owner_id))
        .filter(verification_code::Column::Purpose.eq(purpose.key()))
        .exec(uow.txn())
        .await?;
    Ok(Some(Error::invalid(
        field,
        "does not match the verification code",
    )))
}

/// Commits a unit whose command failed on purpose (e.g. a counted wrong guess) and returns the
/// failure.
pub(crate) async fn commit_then_fail<T>(uow: UnitOfWork, error: Error) -> Result<T> {
    uow.commit().await?;
    Err(error)
}
