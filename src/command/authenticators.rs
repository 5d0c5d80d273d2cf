//! The user's authenticators: usernames, password, TOTP, OTP SMS/email, authentication keys
//! and identity-provider links.

use sea_orm::sea_query::{Condition, Expr, ExprTrait};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::json;

use super::{
    CodePurpose, commit_then_fail, consume_code, issue_code, new_id, precheck_user_for_write,
    touch, user_for_write,
};
use crate::domain::codes::CodeKind;
use crate::domain::password::{self, cost::Cost};
use crate::domain::{Scope, Timestamp, fold_case, keys, totp};
use crate::error::{Error, Result, unique};
use crate::limits::hashing::Hashing;
use crate::store::ScopedDb;
use crate::store::entities::{
    authentication_key, idp_link, otp_email, otp_sms, password as password_row, totp as totp_row,
    user, username,
};
use crate::store::writes::creates::username_clash;
use crate::store::writes::guarded;
use crate::store::writes::unit::{UnitOfWork, Written};

/// A password to set, as the request gave it (already validated).
#[derive(Clone, Debug)]
pub struct NewPassword {
    pub secret: PasswordSecret,
    pub change_required: bool,
}

/// A plain password is hashed only once the write is known to apply (the user or organization
/// exists in the caller's scope), before the write's unit begins; an imported hash was checked
/// against the cost ceiling when it was parsed.
#[derive(Clone)]
pub enum PasswordSecret {
    Plain(String),
    Hash(String),
}

impl std::fmt::Debug for PasswordSecret {
    /// Neither a password nor its hash reaches a log.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PasswordSecret::Plain(_) => "Plain(..)",
            PasswordSecret::Hash(_) => "Hash(..)",
        })
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewUsername {
    pub username: String,
    pub organization_specific: bool,
}

/// Inserts a username after checking it is free: an instance-wide name clashes with the same
/// name anywhere, an organization-specific one with the same name in its organization or
/// instance-wide. Writers are serialized, so the check cannot race; the unique index backs it.
///
/// A caller limited to one organization may create only organization-specific names: an
/// instance-wide name would squat a name for every organization, and its AlreadyExists would
/// reveal other organizations' names. `field` names the username (`usernames[i]`,
/// `username`).
async fn insert_username(
    uow: &UnitOfWork,
    user: &user::Model,
    name: &NewUsername,
    field: &str,
) -> Result<String> {
    check_username_scope(uow.scope(), name, field)?;
    let row = username_row(user, name, uow.now());
    insert_username_row(uow, row, name, field).await
}

/// Writes `row`, the username `name` of a user (see [`insert_username`], whose checks it
/// skips), and returns its id. The user's authenticator document is the caller's to keep.
pub(crate) async fn insert_username_row(
    uow: &UnitOfWork,
    row: username::Model,
    name: &NewUsername,
    field: &str,
) -> Result<String> {
    let organization = name
        .organization_specific
        .then_some(row.organization_id.as_str());
    let clash = username_clash(&row.username_lower, organization);
    let id = row.id.clone();
    // Checked and written in one statement.
    let taken = || username_taken(name, field);
    let free = Condition::all().add(Expr::exists(clash).not());
    if !guarded::insert_where(uow.txn(), username::ActiveModel::from(row), free)
        .await
        .map_err(|error| unique(error, taken))?
    {
        return Err(taken());
    }
    Ok(id)
}

/// The row of a new username of `user`, added at `now`.
pub(crate) fn username_row(
    user: &user::Model,
    name: &NewUsername,
    now: Timestamp,
) -> username::Model {
    username::Model {
        id: new_id(),
        user_id: user.id.clone(),
        organization_id: user.organization_id.clone(),
        username: name.username.clone(),
        username_lower: fold_case(&name.username),
        is_organization_specific: name.organization_specific,
        uniqueness_scope: uniqueness_scope(name, &user.organization_id),
        created_at: now.micros(),
    }
}

/// A caller limited to one organization may add only organization-specific names (see
/// [`insert_username`]).
pub(crate) fn check_username_scope(scope: &Scope, name: &NewUsername, field: &str) -> Result<()> {
    if !name.organization_specific && scope.organization().is_some() {
        return Err(Error::PermissionDenied(format!(
            "{field}.isOrganizationSpecific: a token limited to an organization can only add \
             organization-specific usernames; instance-wide usernames need an instance-wide token"
        )));
    }
    Ok(())
}

/// The uniqueness scope a username of a user of `organization_id` is unique in.
pub(crate) fn uniqueness_scope(name: &NewUsername, organization_id: &str) -> String {
    if name.organization_specific {
        organization_id.to_owned()
    } else {
        username::INSTANCE_SCOPE.to_owned()
    }
}

pub(crate) fn username_taken(name: &NewUsername, field: &str) -> Error {
    Error::AlreadyExists(format!(
        "{field}.username: the username {:?} is taken",
        name.username
    ))
}

pub async fn add_username(
    db: &ScopedDb,
    user_id: &str,
    name: NewUsername,
) -> Result<(String, Written)> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let id = insert_username(&uow, &user, &name, "username").await?;
    let written = touch(&mut uow, &user, "user.username.added", json!({"usernameId": id, "username": name.username, "isOrganizationSpecific": name.organization_specific})).await?;
    uow.commit().await?;
    Ok((id, written))
}

pub async fn remove_username(db: &ScopedDb, user_id: &str, username_id: &str) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let removed = username::Entity::delete_many()
        .filter(username::Column::Id.eq(username_id))
        .filter(username::Column::UserId.eq(user.id.as_str()))
        .exec(uow.txn())
        .await?;
    if removed.rows_affected == 0 {
        return Err(Error::NotFound(format!(
            "usernameId: the user has no username with id {username_id:?}"
        )));
    }
    let written = touch(
        &mut uow,
        &user,
        "user.username.removed",
        json!({"usernameId": username_id}),
    )
    .await?;
    uow.commit().await?;
    Ok(written)
}

/// A password ready to store.
pub(crate) struct HashedPassword {
    hash: String,
    change_required: bool,
}

impl HashedPassword {
    /// The stored row of the password of `user_id`, set at `now`.
    pub(crate) fn row(&self, user_id: &str, now: Timestamp) -> password_row::Model {
        password_row::Model {
            user_id: user_id.to_owned(),
            hash: self.hash.clone(),
            changed_at: now.micros(),
            change_required: self.change_required,
        }
    }
}

/// Hashes a plain password under the server's hashing bound (before any unit begins: it is
/// slow); an imported hash is stored as it is.
pub(crate) async fn hashed(hashing: &Hashing, password: NewPassword) -> Result<HashedPassword> {
    let hash = match password.secret {
        PasswordSecret::Plain(plain) => hashing.hash(plain).await?,
        PasswordSecret::Hash(hash) => hash,
    };
    Ok(HashedPassword {
        hash,
        change_required: password.change_required,
    })
}

async fn insert_password(uow: &UnitOfWork, user_id: &str, password: &HashedPassword) -> Result<()> {
    password_row::Entity::delete_by_id(user_id)
        .exec(uow.txn())
        .await?;
    let row = password.row(user_id, uow.now());
    password_row::Entity::insert(password_row::ActiveModel::from(row))
        .exec_without_returning(uow.txn())
        .await?;
    Ok(())
}

pub async fn set_password(
    db: &ScopedDb,
    hashing: &Hashing,
    user_id: &str,
    password: NewPassword,
) -> Result<Written> {
    if matches!(password.secret, PasswordSecret::Plain(_)) {
        // Hash only for a user the caller may write: NotFound costs no hashing.
        precheck_user_for_write(db, user_id).await?;
    }
    let password = hashed(hashing, password).await?;
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    insert_password(&uow, &user.id, &password).await?;
    let written = touch(
        &mut uow,
        &user,
        "user.password.set",
        json!({"changeRequired": password.change_required}),
    )
    .await?;
    uow.commit().await?;
    Ok(written)
}

pub async fn remove_password(db: &ScopedDb, user_id: &str) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let removed = password_row::Entity::delete_by_id(user.id.as_str())
        .exec(uow.txn())
        .await?;
    if removed.rows_affected == 0 {
        return Err(Error::NotFound("userId: the user has no password".into()));
    }
    let written = touch(&mut uow, &user, "user.password.removed", json!({})).await?;
    uow.commit().await?;
    Ok(written)
}

pub struct PasswordCheck {
    pub written: Written,
    pub last_login: Timestamp,
    pub change_required: bool,
}

/// Checks a password. The hash is compared outside any transaction (it is slow) and under the
/// server's hashing bound; a match is then recorded as the user's last sign-in. Only active
/// users may sign in. A stored hash that is malformed or above the cost ceiling is never run.
pub async fn verify_password(
    db: &ScopedDb,
    hashing: &Hashing,
    user_id: &str,
    candidate: &str,
) -> Result<PasswordCheck> {
    let state = user::Entity::find_by_id(user_id)
        .one(db.connection())
        .await?
        .filter(|u| db.scope().admits(&u.organization_id))
        .map(|u| u.state);
    let Some(state) = state else {
        return Err(super::user_not_found(user_id));
    };
    let stored = password_row::Entity::find_by_id(user_id)
        .one(db.connection())
        .await?;
    let Some(stored) = stored else {
        return Err(Error::FailedPrecondition(
            "userId: the user has no password".into(),
        ));
    };
    if state != crate::domain::UserState::Active.number() {
        return Err(Error::FailedPrecondition(
            "userId: only an active user can sign in".into(),
        ));
    }
    runnable(&stored.hash)?;
    let matches = hashing
        .verify(stored.hash.clone(), candidate.to_owned())
        .await?;
    if !matches {
        return Err(Error::invalid("password", "does not match"));
    }
    let rehashed = rehash(hashing, &stored.hash, candidate).await?;
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    user::Entity::update_many()
        .col_expr(user::Column::LastLogin, Expr::value(uow.now().micros()))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(uow.txn())
        .await?;
    let mut replaced = false;
    if let Some(hash) = rehashed {
        // Only the hash just checked: a password set meanwhile stays.
        replaced = password_row::Entity::update_many()
            .col_expr(password_row::Column::Hash, Expr::value(hash))
            .filter(password_row::Column::UserId.eq(user.id.as_str()))
            .filter(password_row::Column::Hash.eq(stored.hash.as_str()))
            .exec(uow.txn())
            .await?
            .rows_affected
            > 0;
    }
    let written = touch(
        &mut uow,
        &user,
        "user.password.checked",
        json!({"rehashed": replaced}),
    )
    .await?;
    uow.commit().await?;
    Ok(PasswordCheck {
        last_login: written.at,
        written,
        change_required: stored.change_required,
    })
}

/// A hash of the password just checked with our own parameters, when the stored one has
/// others (see [`password::is_outdated`]). When hashing is busy, the upgrade waits for a later
/// sign-in rather than failing this one.
async fn rehash(hashing: &Hashing, stored: &str, candidate: &str) -> Result<Option<String>> {
    if !password::is_outdated(stored) {
        return Ok(None);
    }
    match hashing.hash(candidate.to_owned()).await {
        Ok(hash) => Ok(Some(hash)),
        Err(Error::ResourceExhausted(_)) => Ok(None),
        Err(error) => Err(error),
    }
}

/// Refuses to run a stored hash that could not be verified or that exceeds the cost ceiling
/// (it may predate the ceiling or have been written by SQL): the user needs a new password.
fn runnable(stored: &str) -> Result<()> {
    let reset = "; set a new password (SetPassword) to reset it";
    let cost = Cost::of(stored).map_err(|reason| {
        Error::FailedPrecondition(format!(
            "userId: the stored password hash cannot be verified ({reason}){reset}"
        ))
    })?;
    cost.within_ceiling().map_err(|reason| {
        Error::FailedPrecondition(format!(
            "userId: the stored password hash exceeds the server's cost ceiling ({reason}){reset}"
        ))
    })?;
    Ok(())
}

pub struct TotpStarted {
    pub id: String,
    pub uri: String,
    pub secret: String,
    pub written: Written,
}

pub async fn start_totp(db: &ScopedDb, user_id: &str, name: String) -> Result<TotpStarted> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let account = user.email.clone().unwrap_or_else(|| user.id.clone());
    let registration = totp::register(&account).map_err(Error::Internal)?;
    let id = new_id();
    totp_row::Entity::insert(totp_row::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user.id.clone()),
        name: Set(name.clone()),
        secret: Set(registration.secret.clone()),
        is_verified: Set(false),
        created_at: Set(uow.now().micros()),
    })
    .exec_without_returning(uow.txn())
    .await?;
    let written = touch(
        &mut uow,
        &user,
        "user.totp.added",
        json!({"totpId": id, "name": name}),
    )
    .await?;
    uow.commit().await?;
    Ok(TotpStarted {
        id,
        uri: registration.uri,
        secret: registration.secret,
        written,
    })
}

pub async fn verify_totp(
    db: &ScopedDb,
    user_id: &str,
    totp_id: &str,
    code: &str,
) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let row = totp_row::Entity::find_by_id(totp_id)
        .filter(totp_row::Column::UserId.eq(user.id.as_str()))
        .one(uow.txn())
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "totpId: the user has no TOTP authenticator with id {totp_id:?}"
            ))
        })?;
    if row.is_verified {
        return Err(Error::FailedPrecondition(
            "totpId: the TOTP authenticator is already verified".into(),
        ));
    }
    let valid = totp::check(&row.secret, code).map_err(Error::Internal)?;
    if !valid {
        return Err(Error::invalid("code", "is not the current TOTP code"));
    }
    totp_row::Entity::update(totp_row::ActiveModel {
        id: Set(row.id.clone()),
        is_verified: Set(true),
        ..Default::default()
    })
    .exec(uow.txn())
    .await?;
    let written = touch(
        &mut uow,
        &user,
        "user.totp.verified",
        json!({"totpId": row.id}),
    )
    .await?;
    uow.commit().await?;
    Ok(written)
}

/// Which one-time-password channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OtpChannel {
    Sms,
    Email,
}

impl OtpChannel {
    fn purpose(self) -> CodePurpose {
        match self {
            OtpChannel::Sms => CodePurpose::OtpSms,
            OtpChannel::Email => CodePurpose::OtpEmail,
        }
    }

    fn id_field(self) -> &'static str {
        match self {
            OtpChannel::Sms => "otpSmsId",
            OtpChannel::Email => "otpEmailId",
        }
    }
}

pub async fn add_otp(
    db: &ScopedDb,
    user_id: &str,
    channel: OtpChannel,
    target: String,
    return_code: bool,
) -> Result<(String, Written, Option<String>)> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let id = new_id();
    let now = uow.now().micros();
    match channel {
        OtpChannel::Sms => {
            otp_sms::Entity::insert(otp_sms::ActiveModel {
                id: Set(id.clone()),
                user_id: Set(user.id.clone()),
                phone: Set(target.clone()),
                is_verified: Set(false),
                created_at: Set(now),
            })
            .exec_without_returning(uow.txn())
            .await?;
        }
        OtpChannel::Email => {
            otp_email::Entity::insert(otp_email::ActiveModel {
                id: Set(id.clone()),
                user_id: Set(user.id.clone()),
                address: Set(target.clone()),
                is_verified: Set(false),
                created_at: Set(now),
            })
            .exec_without_returning(uow.txn())
            .await?;
        }
    }
    let code = issue_code(&uow, &user.id, &id, channel.purpose(), CodeKind::Otp).await?;
    let event = match channel {
        OtpChannel::Sms => "user.otp_sms.added",
        OtpChannel::Email => "user.otp_email.added",
    };
    let written = touch(
        &mut uow,
        &user,
        event,
        json!({"id": id, "target": target, "codeToSend": !return_code}),
    )
    .await?;
    uow.commit().await?;
    Ok((id, written, return_code.then_some(code)))
}

pub async fn verify_otp(
    db: &ScopedDb,
    user_id: &str,
    channel: OtpChannel,
    otp_id: &str,
    code: &str,
) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let verified = match channel {
        OtpChannel::Sms => otp_sms::Entity::find_by_id(otp_id)
            .filter(otp_sms::Column::UserId.eq(user.id.as_str()))
            .one(uow.txn())
            .await?
            .map(|row| row.is_verified),
        OtpChannel::Email => otp_email::Entity::find_by_id(otp_id)
            .filter(otp_email::Column::UserId.eq(user.id.as_str()))
            .one(uow.txn())
            .await?
            .map(|row| row.is_verified),
    };
    let field = channel.id_field();
    match verified {
        None => {
            return Err(Error::NotFound(format!(
                "{field}: the user has no such authenticator {otp_id:?}"
            )));
        }
        Some(true) => {
            return Err(Error::FailedPrecondition(format!(
                "{field}: the authenticator is already verified"
            )));
        }
        Some(false) => {}
    }
    if let Some(error) = consume_code(&uow, otp_id, channel.purpose(), code, "code").await? {
        return commit_then_fail(uow, error).await;
    }
    let event = match channel {
        OtpChannel::Sms => {
            otp_sms::Entity::update(otp_sms::ActiveModel {
                id: Set(otp_id.to_owned()),
                is_verified: Set(true),
                ..Default::default()
            })
            .exec(uow.txn())
            .await?;
            "user.otp_sms.verified"
        }
        OtpChannel::Email => {
            otp_email::Entity::update(otp_email::ActiveModel {
                id: Set(otp_id.to_owned()),
                is_verified: Set(true),
                ..Default::default()
            })
            .exec(uow.txn())
            .await?;
            "user.otp_email.verified"
        }
    };
    let written = touch(&mut uow, &user, event, json!({"id": otp_id})).await?;
    uow.commit().await?;
    Ok(written)
}

/// An authenticator kind whose rows are removed by id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removable {
    Totp,
    OtpSms,
    OtpEmail,
    AuthenticationKey,
    WebAuthN,
}

pub async fn remove(db: &ScopedDb, user_id: &str, kind: Removable, id: &str) -> Result<Written> {
    use crate::store::entities::webauthn_credential;
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let txn = uow.txn();
    let (removed, field, event) = match kind {
        Removable::Totp => (
            totp_row::Entity::delete_many()
                .filter(totp_row::Column::Id.eq(id))
                .filter(totp_row::Column::UserId.eq(user.id.as_str()))
                .exec(txn)
                .await?,
            "totpId",
            "user.totp.removed",
        ),
        Removable::OtpSms => (
            otp_sms::Entity::delete_many()
                .filter(otp_sms::Column::Id.eq(id))
                .filter(otp_sms::Column::UserId.eq(user.id.as_str()))
                .exec(txn)
                .await?,
            "otpSmsId",
            "user.otp_sms.removed",
        ),
        Removable::OtpEmail => (
            otp_email::Entity::delete_many()
                .filter(otp_email::Column::Id.eq(id))
                .filter(otp_email::Column::UserId.eq(user.id.as_str()))
                .exec(txn)
                .await?,
            "otpEmailId",
            "user.otp_email.removed",
        ),
        Removable::AuthenticationKey => (
            authentication_key::Entity::delete_many()
                .filter(authentication_key::Column::Id.eq(id))
                .filter(authentication_key::Column::UserId.eq(user.id.as_str()))
                .exec(txn)
                .await?,
            "authenticationKeyId",
            "user.key.removed",
        ),
        Removable::WebAuthN => (
            webauthn_credential::Entity::delete_many()
                .filter(webauthn_credential::Column::Id.eq(id))
                .filter(webauthn_credential::Column::UserId.eq(user.id.as_str()))
                .exec(txn)
                .await?,
            "webAuthNId",
            "user.webauthn.removed",
        ),
    };
    if removed.rows_affected == 0 {
        return Err(Error::NotFound(format!(
            "{field}: the user has no such authenticator {id:?}"
        )));
    }
    let written = touch(&mut uow, &user, event, json!({"id": id})).await?;
    uow.commit().await?;
    Ok(written)
}

pub struct KeyAdded {
    pub id: String,
    pub key_file: Vec<u8>,
    pub written: Written,
}

pub async fn add_key(
    db: &ScopedDb,
    user_id: &str,
    expiration: Option<Timestamp>,
) -> Result<KeyAdded> {
    let pair = keys::generate().map_err(Error::Internal)?;
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    if let Some(at) = expiration
        && at <= uow.now()
    {
        return Err(Error::invalid("expirationDate", "must be in the future"));
    }
    let id = new_id();
    let written = touch(
        &mut uow,
        &user,
        "user.key.added",
        json!({"keyId": id, "expirationDate": expiration.map(|t| t.to_string())}),
    )
    .await?;
    authentication_key::Entity::insert(authentication_key::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user.id.clone()),
        key_type: Set(1),
        public_key: Set(pair.public_pem),
        expiration_date: Set(expiration.map(Timestamp::micros)),
        created_at: Set(written.at.micros()),
        changed_at: Set(written.at.micros()),
        sequence: Set(written.sequence),
    })
    .exec_without_returning(uow.txn())
    .await?;
    uow.commit().await?;
    Ok(KeyAdded {
        key_file: keys::key_file(&id, &user.id, &pair.private_pem, expiration),
        id,
        written,
    })
}

#[derive(Clone, Debug)]
pub struct NewIdpLink {
    pub idp_id: String,
    pub idp_name: String,
    pub linked_user_id: String,
    pub linked_username: String,
}

pub async fn add_idp_link(db: &ScopedDb, user_id: &str, link: NewIdpLink) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let taken = || idp_link_taken(&link, "linkedUserId");
    idp_link::Entity::insert(idp_link::ActiveModel {
        id: Set(new_id()),
        user_id: Set(user.id.clone()),
        organization_id: Set(user.organization_id.clone()),
        idp_id: Set(link.idp_id.clone()),
        idp_name: Set(link.idp_name.clone()),
        external_user_id: Set(link.linked_user_id.clone()),
        external_username: Set(link.linked_username.clone()),
        created_at: Set(uow.now().micros()),
    })
    .exec_without_returning(uow.txn())
    .await
    .map_err(|error| unique(error, taken))?;
    let written = touch(
        &mut uow,
        &user,
        "user.idp.linked",
        json!({"idpId": link.idp_id, "linkedUserId": link.linked_user_id}),
    )
    .await?;
    uow.commit().await?;
    Ok(written)
}

/// `field` names the link's `linkedUserId`.
pub(crate) fn idp_link_taken(link: &NewIdpLink, field: &str) -> Error {
    Error::AlreadyExists(format!(
        "{field}: {:?} at {:?} is already linked to a user of this organization",
        link.linked_user_id, link.idp_id
    ))
}

pub async fn remove_idp_link(
    db: &ScopedDb,
    user_id: &str,
    idp_id: &str,
    linked_user_id: &str,
) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let removed = idp_link::Entity::delete_many()
        .filter(idp_link::Column::UserId.eq(user.id.as_str()))
        .filter(idp_link::Column::IdpId.eq(idp_id))
        .filter(idp_link::Column::ExternalUserId.eq(linked_user_id))
        .exec(uow.txn())
        .await?;
    if removed.rows_affected == 0 {
        return Err(Error::NotFound(format!(
            "linkedUserId: the user has no link to {linked_user_id:?} at {idp_id:?}"
        )));
    }
    let written = touch(
        &mut uow,
        &user,
        "user.idp.unlinked",
        json!({"idpId": idp_id, "linkedUserId": linked_user_id}),
    )
    .await?;
    uow.commit().await?;
    Ok(written)
}
