//! Personal access tokens: minting (CLI, RPC, and the bootstrap token of an empty directory)
//! and revocation. Each is one unit of work with an event, so the audit trail shows who minted
//! or revoked what; events never carry the secret or its hash.
//!
//! The rules that keep a token from outgrowing the credential that made it:
//! - a caller mints only within its own grant and organization;
//! - a minted token expires no later than the credential that minted it (a token's expiry, a
//!   JWT's `exp`), and remembers the token it was minted with (`parent_id`);
//! - revoking a token revokes every token minted under it, in the same transaction. Together
//!   with the capped expiry, no token works once its parent does not, without any walk when a
//!   token authenticates;
//! - a caller revokes only tokens whose grant its own covers, and never the last usable admin
//!   token (the operator, with database access, may, and is warned).

use std::collections::HashSet;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, Set};
use serde_json::json;

use super::new_id;
use crate::auth::{Grant, Principal, secret};
use crate::domain::Timestamp;
use crate::error::{Error, Result};
use crate::store::ScopedDb;
use crate::store::entities::{access_token, organization};
use crate::store::reads::tokens as reads;
use crate::store::writes::unit::{UnitOfWork, Written};

/// How an operator gets admin access back; named wherever access could be lost.
pub const RECOVERY: &str = "userdir token create --admin";

/// Parent ids per query while walking descendants: well below every backend's bind limit.
const LINEAGE_BATCH: usize = 500;

/// What a new token may do.
#[derive(Clone, Debug)]
pub struct NewToken {
    pub description: String,
    pub grant: Grant,
    /// None: instance-wide.
    pub organization_id: Option<String>,
    pub expires_at: Option<Timestamp>,
}

/// Who mints or revokes: a caller's principal, or the operator (CLI with database access,
/// bootstrap).
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

    /// The token the new one descends from: the caller's own, if it called with one.
    fn parent(&self) -> Option<&str> {
        match self {
            Minter::Operator => None,
            Minter::Caller(principal) => principal.token_id(),
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
/// when it is limited to an organization, only tokens limited to that same organization; and
/// the token expires no later than the caller's credential, whatever was asked.
pub async fn create(db: &ScopedDb, minter: Minter<'_>, mut new: NewToken) -> Result<Minted> {
    if let Minter::Caller(principal) = minter {
        check_within(principal, &new)?;
        // Only a JWT within the verifier's clock-skew leeway gets here already expired.
        if principal
            .expires_at
            .is_some_and(|at| at <= Timestamp::now())
        {
            return Err(Error::FailedPrecondition(
                "the calling credential has expired; tokens it mints cannot outlive it".into(),
            ));
        }
        new.expires_at = earliest(new.expires_at, principal.expires_at);
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
    if let Some(parent) = minter.parent() {
        parent_still_active(&uow, parent).await?;
    }
    let minted = insert(&mut uow, minter, new, false).await?;
    uow.commit().await?;
    Ok(minted)
}

/// The earlier of two expiries, None being "never".
fn earliest(asked: Option<Timestamp>, cap: Option<Timestamp>) -> Option<Timestamp> {
    match (asked, cap) {
        (Some(asked), Some(cap)) => Some(asked.min(cap)),
        (asked, cap) => asked.or(cap),
    }
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

/// The calling token was checked when the call came in; a revocation committed since then
/// must not miss the child (revocation walks committed children, under the same event-log
/// lock this unit holds).
async fn parent_still_active(uow: &UnitOfWork, parent: &str) -> Result<()> {
    let row = access_token::Entity::find_by_id(parent)
        .one(uow.txn())
        .await?;
    let active = row.is_some_and(|row| {
        row.revoked_at.is_none() && row.expires_at.is_none_or(|at| at > uow.now().micros())
    });
    if active {
        Ok(())
    } else {
        Err(Error::FailedPrecondition(
            "the calling token was revoked or expired during the call".into(),
        ))
    }
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
    let secret::NewSecret {
        secret: plain,
        hash,
    } = secret::mint();
    let permissions = new.grant.to_names();
    let owner = new.organization_id.clone().unwrap_or_default();
    let parent_id = minter.parent().map(str::to_owned);
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
            "parentId": parent_id,
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
        parent_id: Set(parent_id),
    })
    .exec_without_returning(uow.txn())
    .await?;
    Ok(Minted {
        id,
        secret: plain,
        written,
    })
}

/// The bootstrap admin token, minted but not committed: whoever starts the server hands the
/// secret over (file, stdout) and only then commits, so a failed hand-over leaves no admin
/// token nobody has. Dropping it rolls the token back.
pub struct PendingBootstrap {
    uow: UnitOfWork,
    minted: Minted,
}

impl PendingBootstrap {
    pub fn secret(&self) -> &str {
        &self.minted.secret
    }

    pub async fn commit(self) -> Result<()> {
        self.uow.commit().await?;
        Ok(())
    }
}

/// Mints the bootstrap admin token if no token was ever minted (revoked tokens count), so it
/// happens exactly once per directory, also when several servers start together (the unit
/// holds the event-log lock until it commits or rolls back).
pub async fn bootstrap(db: &ScopedDb) -> Result<Option<PendingBootstrap>> {
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
    Ok(Some(PendingBootstrap { uow, minted }))
}

pub struct Revoked {
    /// The event of the token asked for.
    pub written: Written,
    /// Its descendants, revoked with it.
    pub cascade: Vec<String>,
    /// No usable admin token is left (only the operator gets this far).
    pub no_admin_left: bool,
}

/// Revokes a token within the revoker's scope, and every token minted under it; takes effect
/// on their next call.
pub async fn revoke(db: &ScopedDb, revoker: Minter<'_>, token_id: &str) -> Result<Revoked> {
    let mut uow = UnitOfWork::begin(db).await?;
    let token = access_token::Entity::find_by_id(token_id)
        .one(uow.txn())
        .await?
        .filter(|t| match uow.scope().organization() {
            None => true,
            Some(own) => t.organization_id.as_deref() == Some(own),
        })
        .ok_or_else(|| Error::NotFound(format!("tokenId: no token with id {token_id:?}")))?;
    if let Minter::Caller(principal) = revoker {
        // A row whose permissions don't parse is treated as admin: only admins may touch it.
        let grant = Grant::from_names(&token.permissions).unwrap_or(Grant::Admin);
        if !principal.grant.covers(&grant) {
            return Err(Error::PermissionDenied(format!(
                "tokenId: the token {token_id:?} holds permissions the caller does not hold; \
                 a token can only revoke tokens whose permissions it holds itself"
            )));
        }
    }
    if token.revoked_at.is_some() {
        return Err(Error::FailedPrecondition(format!(
            "tokenId: the token {token_id:?} is already revoked"
        )));
    }
    let cascade = active_descendants(&uow, &token.id).await?;
    let no_admin_left = takes_the_last_admin(&uow, &token.id, &cascade).await?;
    if no_admin_left && matches!(revoker, Minter::Caller(_)) {
        return Err(Error::FailedPrecondition(format!(
            "tokenId: the token {token_id:?} is the last usable admin token (or one minted \
             it); revoking it would lock every administrator out. Mint another admin token \
             first, or, with database access, `{RECOVERY}`"
        )));
    }
    let by = revoker.name();
    let ids: Vec<&str> = cascade.iter().map(|child| child.id.as_str()).collect();
    let written = mark_revoked(
        &mut uow,
        &token.id,
        token.organization_id.as_deref(),
        json!({"revokedBy": by, "cascade": ids}),
    )
    .await?;
    for child in &cascade {
        mark_revoked(
            &mut uow,
            &child.id,
            child.organization_id.as_deref(),
            json!({"revokedBy": by, "cascadeOf": token.id}),
        )
        .await?;
    }
    uow.commit().await?;
    Ok(Revoked {
        written,
        cascade: cascade.into_iter().map(|child| child.id).collect(),
        no_admin_left,
    })
}

/// Every unrevoked token minted under `root`, at any depth. Revoked ones are walked through
/// too, so that nothing below a token revoked by hand (SQL) is missed; `seen` ends a cycle
/// such hands could make.
async fn active_descendants(uow: &UnitOfWork, root: &str) -> Result<Vec<reads::Child>> {
    let mut found = Vec::new();
    let mut seen = HashSet::from([root.to_owned()]);
    let mut generation = vec![root.to_owned()];
    while !generation.is_empty() {
        let mut next = Vec::new();
        for parents in generation.chunks(LINEAGE_BATCH) {
            for child in reads::children(uow.txn(), parents).await? {
                if !seen.insert(child.id.clone()) {
                    continue;
                }
                next.push(child.id.clone());
                if !child.revoked {
                    found.push(child);
                }
            }
        }
        generation = next;
    }
    Ok(found)
}

/// Whether revoking `root` and `cascade` leaves no usable admin token, where one was.
async fn takes_the_last_admin(
    uow: &UnitOfWork,
    root: &str,
    cascade: &[reads::Child],
) -> Result<bool> {
    let admins = reads::usable_admin_ids(uow.txn(), uow.now()).await?;
    let revoked = |id: &String| id == root || cascade.iter().any(|child| &child.id == id);
    Ok(!admins.is_empty() && admins.iter().all(revoked))
}

async fn mark_revoked(
    uow: &mut UnitOfWork,
    id: &str,
    owner: Option<&str>,
    payload: serde_json::Value,
) -> Result<Written> {
    let written = uow.record(
        "access_token",
        id,
        owner.unwrap_or_default(),
        "access_token.revoked",
        payload,
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
        .filter(access_token::Column::Id.eq(id))
        .exec(uow.txn())
        .await?;
    Ok(written)
}
