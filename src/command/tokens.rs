//! Personal access tokens: minting (CLI, RPC, and the bootstrap token of an empty directory)
//! and revocation. Each is one unit of work with an event, so the audit trail shows who minted
//! or revoked what; events never carry the secret or its hash.

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

use super::new_id;
use crate::auth::{Grant, Principal, secret};
use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::store::ScopedDb;
use crate::store::entities::{access_token, organization};
use crate::store::writes::unit::{UnitOfWork, Written};

/// What a new token may do.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub description: String,
    pub grant: Grant,
    /// None: instance-wide.
    pub organization_id: Option<String>,
    pub expires_at: Option<Timestamp>,
}

/// Who mints: a caller's principal, or the operator (CLI with database access, bootstrap).
#[derive(Clone, Copy, Debug)]
pub enum Minter<'a> {
    Operator,
    Caller(&'a Principal),
}

impl Minter<'_> {
    fn name(&self) -> String {
        match self {
            Minter::Operator => "cli".into(),
            Minter::Caller(principal) => principal.subject(),
        }
    }
}

pub struct Minted {
    pub id: String,
    /// The bearer secret: returned once, never stored.
    pub secret: String,
    pub written: Written,
}

/// Mints a token. A caller can only mint within what it holds: no permission it lacks, and,
/// when it is limited to an organization, only tokens limited to that same organization.
pub async fn create(db: &ScopedDb, minter: Minter<'_>, new: NewToken) -> Result<Minted> {
    if let Minter::Caller(principal) = minter {
        check_within(principal, &new)?;
    }
    let mut uow = UnitOfWork::begin(db).await?;
    if let Some(organization_id) = &new.organization_id {
        // Out of scope reads as absent, so organizations cannot be probed this way either.
        organization::Entity::find_by_id(organization_id.as_str())
            .one(uow.txn())
            .await?
            .filter(|org| uow.scope().admits(&org.id))
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "organizationId: no organization with id {organization_id:?}"
                ))
            })?;
    }
    let minted = insert(&mut uow, minter, new, false).await?;
    uow.commit().await?;
    Ok(minted)
}

fn check_within(principal: &Principal, new: &NewToken) -> Result<()> {
    if !principal.grant.covers(&new.grant) {
        return Err(Error::PermissionDenied(
            "permissions: a token cannot grant permissions its creator does not hold".into(),
        ));
    }
    if let Some(own) = &principal.organization
        && new.organization_id.as_ref() != Some(own)
    {
        return Err(Error::PermissionDenied(format!(
            "organizationId: a token limited to an organization can only mint tokens limited \
             to it ({own:?})"
        )));
    }
    Ok(())
}

async fn insert(
    uow: &mut UnitOfWork,
    minter: Minter<'_>,
    new: NewToken,
    bootstrap: bool,
) -> Result<Minted> {
    if let Some(expires_at) = new.expires_at
        && expires_at <= uow.now()
    {
        return Err(Error::invalid("expirationDate", "must be in the future"));
    }
    let id = new_id();
    let (plain, hash) = secret::mint();
    let permissions = new.grant.to_names();
    let owner = new.organization_id.clone().unwrap_or_default();
    let written = uow.record(
        "access_token",
        &id,
        &owner,
        "access_token.added",
        json!({
            "description": new.description,
            "permissions": permissions,
            "organizationId": new.organization_id,
            "expiresAt": new.expires_at.map(|t| t.micros()),
            "bootstrap": bootstrap,
            "createdBy": minter.name(),
        }),
    );
    access_token::Entity::insert(access_token::ActiveModel {
        id: Set(id.clone()),
        secret_hash: Set(hash),
        description: Set(new.description),
        permissions: Set(permissions),
        organization_id: Set(new.organization_id),
        bootstrap: Set(bootstrap),
        created_by: Set(minter.name()),
        created_at: Set(written.at.micros()),
        expires_at: Set(new.expires_at.map(|t| t.micros())),
        revoked_at: Set(None),
        sequence: Set(written.sequence),
    })
    .exec_without_returning(uow.txn())
    .await?;
    Ok(Minted {
        id,
        secret: plain,
        written,
    })
}

/// Mints the bootstrap admin token if no token was ever minted (revoked tokens count), so it
/// happens exactly once per directory, also when several servers start together.
pub async fn bootstrap(db: &ScopedDb) -> Result<Option<Minted>> {
    let mut uow = UnitOfWork::begin(db).await?;
    if access_token::Entity::find().count(uow.txn()).await? > 0 {
        uow.rollback().await?;
        return Ok(None);
    }
    let minted = insert(
        &mut uow,
        Minter::Operator,
        NewToken {
            description: "bootstrap admin token".into(),
            grant: Grant::Admin,
            organization_id: None,
            expires_at: None,
        },
        true,
    )
    .await?;
    uow.commit().await?;
    Ok(Some(minted))
}

/// Revokes a token within the caller's scope; takes effect on the token's next call.
pub async fn revoke(db: &ScopedDb, token_id: &str) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let token = access_token::Entity::find_by_id(token_id)
        .one(uow.txn())
        .await?
        .filter(|t| match uow.scope().organization() {
            None => true,
            Some(own) => t.organization_id.as_deref() == Some(own),
        })
        .ok_or_else(|| Error::NotFound(format!("tokenId: no token with id {token_id:?}")))?;
    if token.revoked_at.is_some() {
        return Err(Error::FailedPrecondition(format!(
            "tokenId: the token {token_id:?} is already revoked"
        )));
    }
    let written = uow.record(
        "access_token",
        &token.id,
        token.organization_id.as_deref().unwrap_or_default(),
        "access_token.revoked",
        json!({}),
    );
    access_token::Entity::update_many()
        .col_expr(
            access_token::Column::RevokedAt,
            Expr::value(written.at.micros()),
        )
        .col_expr(
            access_token::Column::Sequence,
            Expr::value(written.sequence),
        )
        .filter(access_token::Column::Id.eq(token.id.as_str()))
        .exec(uow.txn())
        .await?;
    uow.commit().await?;
    Ok(written)
}
