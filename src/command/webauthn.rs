//! WebAuthN registration with webauthn-rs: the server issues creation options and keeps the
//! registration state in the (unverified) credential row until the attestation arrives.

use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};
use webauthn_rs::Webauthn;
use webauthn_rs::prelude::{
    Credential, Passkey, PasskeyRegistration, RegisterPublicKeyCredential, Url, Uuid,
};

use super::{new_id, touch, user_for_write};
use crate::error::{Error, Result};
use crate::store::ScopedDb;
use crate::store::entities::{username, webauthn_credential};
use crate::store::writes::unit::{UnitOfWork, Written};

/// The relying party: which site the credentials are bound to.
pub fn relying_party(rp_id: &str, origin: &str) -> anyhow::Result<Webauthn> {
    let origin = Url::parse(origin)?;
    Ok(webauthn_rs::WebauthnBuilder::new(rp_id, &origin)?
        .rp_name("userdir")
        .build()?)
}

fn internal(error: impl std::fmt::Display) -> Error {
    Error::Internal(error.to_string())
}

pub async fn start(
    db: &ScopedDb,
    webauthn: &Webauthn,
    user_id: &str,
    name: String,
) -> Result<(String, Value, Written)> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let registered = webauthn_credential::Entity::find()
        .filter(webauthn_credential::Column::UserId.eq(user.id.as_str()))
        .filter(webauthn_credential::Column::IsVerified.eq(true))
        .all(uow.txn())
        .await?;
    // Authenticators the user registered already are excluded, so a device is not added twice.
    let exclude: Vec<_> = registered
        .iter()
        .filter_map(|row| row.credential.as_ref()?.get("passkey").cloned())
        .filter_map(|passkey| serde_json::from_value::<Passkey>(passkey).ok())
        .map(|passkey| passkey.cred_id().clone())
        .collect();
    let login = username::Entity::find()
        .filter(username::Column::UserId.eq(user.id.as_str()))
        .one(uow.txn())
        .await?
        .map(|u| u.username)
        .or(user.email.clone())
        .unwrap_or_else(|| user.id.clone());
    let handle = Uuid::parse_str(&user.id)
        .unwrap_or_else(|_| Uuid::new_v5(&Uuid::NAMESPACE_OID, user.id.as_bytes()));
    let (options, state) = webauthn
        .start_passkey_registration(
            handle,
            &login,
            &login,
            (!exclude.is_empty()).then_some(exclude),
        )
        .map_err(internal)?;
    let id = new_id();
    webauthn_credential::Entity::insert(webauthn_credential::ActiveModel {
        id: Set(id.clone()),
        user_id: Set(user.id.clone()),
        name: Set(name.clone()),
        is_verified: Set(false),
        user_verified: Set(false),
        credential: Set(Some(
            json!({ "registration": serde_json::to_value(&state).map_err(internal)? }),
        )),
        created_at: Set(uow.now().micros()),
    })
    .exec_without_returning(uow.txn())
    .await?;
    let written = touch(
        &mut uow,
        &user,
        "user.webauthn.started",
        json!({"webAuthNId": id, "name": name}),
    )
    .await?;
    uow.commit().await?;
    Ok((
        id,
        serde_json::to_value(options).map_err(internal)?,
        written,
    ))
}

async fn own_credential(
    uow: &UnitOfWork,
    user_id: &str,
    id: &str,
) -> Result<webauthn_credential::Model> {
    webauthn_credential::Entity::find_by_id(id)
        .filter(webauthn_credential::Column::UserId.eq(user_id))
        .one(uow.txn())
        .await?
        .ok_or_else(|| {
            Error::NotFound(format!(
                "webAuthNId: the user has no WebAuthN authenticator {id:?}"
            ))
        })
}

pub async fn verify(
    db: &ScopedDb,
    webauthn: &Webauthn,
    user_id: &str,
    id: &str,
    credential: Value,
    name: Option<String>,
) -> Result<Written> {
    let response: RegisterPublicKeyCredential =
        serde_json::from_value(credential).map_err(|e| {
            Error::invalid(
                "publicKeyCredential",
                format!("is not a registration response: {e}"),
            )
        })?;
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let row = own_credential(&uow, &user.id, id).await?;
    if row.is_verified {
        return Err(Error::FailedPrecondition(
            "webAuthNId: the registration is already verified".into(),
        ));
    }
    let state: PasskeyRegistration = row
        .credential
        .as_ref()
        .and_then(|c| c.get("registration").cloned())
        .and_then(|state| serde_json::from_value(state).ok())
        .ok_or_else(|| {
            Error::FailedPrecondition("webAuthNId: no registration is pending".into())
        })?;
    let passkey = webauthn
        .finish_passkey_registration(&response, &state)
        .map_err(|e| {
            Error::invalid(
                "publicKeyCredential",
                format!("the attestation was rejected: {e}"),
            )
        })?;
    let user_verified = Credential::from(passkey.clone()).user_verified;
    webauthn_credential::Entity::update(webauthn_credential::ActiveModel {
        id: Set(row.id.clone()),
        name: Set(name.unwrap_or(row.name)),
        is_verified: Set(true),
        user_verified: Set(user_verified),
        credential: Set(Some(
            json!({ "passkey": serde_json::to_value(&passkey).map_err(internal)? }),
        )),
        ..Default::default()
    })
    .exec(uow.txn())
    .await?;
    let written = touch(
        &mut uow,
        &user,
        "user.webauthn.verified",
        json!({"webAuthNId": row.id, "userVerified": user_verified}),
    )
    .await?;
    uow.commit().await?;
    Ok(written)
}

pub async fn rename(db: &ScopedDb, user_id: &str, id: &str, name: String) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let user = user_for_write(&uow, user_id).await?;
    uow.authenticators_changed(&user.id);
    let row = own_credential(&uow, &user.id, id).await?;
    webauthn_credential::Entity::update(webauthn_credential::ActiveModel {
        id: Set(row.id.clone()),
        name: Set(name.clone()),
        ..Default::default()
    })
    .exec(uow.txn())
    .await?;
    let written = touch(
        &mut uow,
        &user,
        "user.webauthn.renamed",
        json!({"webAuthNId": row.id, "name": name}),
    )
    .await?;
    uow.commit().await?;
    Ok(written)
}
