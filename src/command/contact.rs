//! Contact email and phone: set (with a verification code unless marked verified) and verify.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::json;

use super::{
    CodePurpose, commit_then_fail, consume_code, discard_code, insert_code, issue_code, new_code,
    touch, user_for_write,
};
use crate::domain::codes::CodeKind;
use crate::domain::{Timestamp, fold_case};
use crate::error::{Error, Result};
use crate::store::ScopedDb;
use crate::store::entities::{user, verification_code};
use crate::store::writes::unit::{UnitOfWork, Written};

/// How a newly set contact value gets verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verification {
    /// A code is created for a sender (userdir has none of its own; the event announces it).
    SendCode { url_template: Option<String> },
    /// A code is created and returned to the caller.
    ReturnCode,
    /// The caller vouches for the value.
    Verified,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContactValue {
    pub value: String,
    pub verification: Verification,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactKind {
    Email,
    Phone,
}

impl ContactKind {
    fn purpose(self) -> CodePurpose {
        match self {
            ContactKind::Email => CodePurpose::ContactEmail,
            ContactKind::Phone => CodePurpose::ContactPhone,
        }
    }

    fn name(self) -> &'static str {
        match self {
            ContactKind::Email => "email",
            ContactKind::Phone => "phone",
        }
    }
}

/// Stores the value on the user row and replaces its pending code. Returns the code when the
/// caller asked for it. Records no event: the calling command does.
pub(crate) async fn apply(
    uow: &UnitOfWork,
    user_id: &str,
    kind: ContactKind,
    contact: &ContactValue,
) -> Result<Option<String>> {
    let verified = contact.verification == Verification::Verified;
    let (value, lower, flag) = match kind {
        ContactKind::Email => (
            user::Column::Email,
            user::Column::EmailLower,
            user::Column::EmailVerified,
        ),
        ContactKind::Phone => (
            user::Column::Phone,
            user::Column::PhoneLower,
            user::Column::PhoneVerified,
        ),
    };
    user::Entity::update_many()
        .col_expr(value, Expr::value(contact.value.clone()))
        .col_expr(lower, Expr::value(fold_case(&contact.value)))
        .col_expr(flag, Expr::value(verified))
        .filter(user::Column::Id.eq(user_id))
        .exec(uow.txn())
        .await?;
    if verified {
        discard_code(uow, user_id, kind.purpose()).await?;
        return Ok(None);
    }
    let code = issue_code(uow, user_id, user_id, kind.purpose(), CodeKind::Contact).await?;
    Ok((contact.verification == Verification::ReturnCode).then_some(code))
}

/// Puts the value on the row of a user being created. Written with the row, it costs no
/// UPDATE after the INSERT (which on SQLite would also rewrite the row's trigram entries); its
/// code comes from [`issue_for_new`] once the row exists.
pub(crate) fn set_on_new(row: &mut user::Model, kind: ContactKind, contact: &ContactValue) {
    let verified = contact.verification == Verification::Verified;
    let lower = Some(fold_case(&contact.value));
    let value = Some(contact.value.clone());
    match kind {
        ContactKind::Email => {
            (row.email, row.email_lower, row.email_verified) = (value, lower, verified);
        }
        ContactKind::Phone => {
            (row.phone, row.phone_lower, row.phone_verified) = (value, lower, verified);
        }
    }
}

/// The code of a value [`set_on_new`] put on a new user's row, as [`apply`] returns it: a new
/// user has no pending code to replace.
pub(crate) async fn issue_for_new(
    uow: &UnitOfWork,
    user_id: &str,
    kind: ContactKind,
    contact: &ContactValue,
) -> Result<Option<String>> {
    if contact.verification == Verification::Verified {
        return Ok(None);
    }
    let code = insert_code(uow, user_id, user_id, kind.purpose(), CodeKind::Contact).await?;
    Ok((contact.verification == Verification::ReturnCode).then_some(code))
}

/// [`issue_for_new`] for a user written in a batch (`command::users`): the code's row, issued
/// at `now`, and the code when the caller asked for it; None for a verified value.
pub(crate) fn new_code_for_new(
    user_id: &str,
    kind: ContactKind,
    contact: &ContactValue,
    now: Timestamp,
) -> Option<(verification_code::Model, Option<String>)> {
    if contact.verification == Verification::Verified {
        return None;
    }
    let (row, plain) = new_code(user_id, user_id, kind.purpose(), CodeKind::Contact, now);
    Some((
        row,
        (contact.verification == Verification::ReturnCode).then_some(plain),
    ))
}

/// The event payload describing a set contact value; never the code.
pub(crate) fn event_payload(kind: ContactKind, contact: &ContactValue) -> serde_json::Value {
    let url_template = match &contact.verification {
        Verification::SendCode { url_template } => url_template.clone(),
        _ => None,
    };
    json!({
        kind.name(): contact.value,
        "isVerified": contact.verification == Verification::Verified,
        "codeToSend": matches!(contact.verification, Verification::SendCode { .. }),
        "urlTemplate": url_template,
    })
}

pub async fn set(
    db: &ScopedDb,
    user_id: &str,
    kind: ContactKind,
    contact: ContactValue,
) -> Result<(Written, Option<String>)> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    let code = apply(&uow, &user.id, kind, &contact).await?;
    let event = match kind {
        ContactKind::Email => "user.email.set",
        ContactKind::Phone => "user.phone.set",
    };
    let written = touch(&mut uow, &user, event, event_payload(kind, &contact)).await?;
    uow.commit().await?;
    Ok((written, code))
}

pub async fn verify(
    db: &ScopedDb,
    user_id: &str,
    kind: ContactKind,
    code: &str,
) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    let (present, verified) = match kind {
        ContactKind::Email => (user.email.is_some(), user.email_verified),
        ContactKind::Phone => (user.phone.is_some(), user.phone_verified),
    };
    if !present {
        return Err(Error::FailedPrecondition(format!(
            "userId: the user has no {}",
            kind.name()
        )));
    }
    if verified {
        return Err(Error::FailedPrecondition(format!(
            "userId: the {} is already verified",
            kind.name()
        )));
    }
    if let Some(error) =
        consume_code(&uow, &user.id, kind.purpose(), code, "verificationCode").await?
    {
        return commit_then_fail(uow, error).await;
    }
    let flag = match kind {
        ContactKind::Email => user::Column::EmailVerified,
        ContactKind::Phone => user::Column::PhoneVerified,
    };
    user::Entity::update_many()
        .col_expr(flag, Expr::value(true))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(uow.txn())
        .await?;
    let event = match kind {
        ContactKind::Email => "user.email.verified",
        ContactKind::Phone => "user.phone.verified",
    };
    let written = touch(&mut uow, &user, event, json!({})).await?;
    uow.commit().await?;
    Ok(written)
}
