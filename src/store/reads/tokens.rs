//! Reading access tokens: authentication by secret hash, listings within a scope, and what
//! revocation and start-up check (lineage, usable admin tokens).

use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QuerySelect,
};

use super::directory::{Page, Paging, page};
use crate::domain::Timestamp;
use crate::store::ScopedDb;
use crate::store::entities::access_token;

/// The token whose secret hashes to `secret_hash`, if it is neither revoked nor expired.
pub async fn active_by_hash(
    db: &DatabaseConnection,
    secret_hash: &str,
    now: Timestamp,
) -> Result<Option<access_token::Model>, DbErr> {
    access_token::Entity::find()
        .filter(access_token::Column::SecretHash.eq(secret_hash))
        .filter(active(now))
        .one(db)
        .await
}

/// Neither revoked nor expired at `now`.
fn active(now: Timestamp) -> Condition {
    Condition::all()
        .add(access_token::Column::RevokedAt.is_null())
        .add(
            Condition::any()
                .add(access_token::Column::ExpiresAt.is_null())
                .add(access_token::Column::ExpiresAt.gt(now.micros())),
        )
}

/// The ids of the tokens that can administer the whole directory at `now`: admin, not limited
/// to an organization, neither revoked nor expired. None left locks the API's operator out;
/// `userdir token create --admin` is the way back.
pub async fn usable_admin_ids(
    db: &impl ConnectionTrait,
    now: Timestamp,
) -> Result<Vec<String>, DbErr> {
    access_token::Entity::find()
        .select_only()
        .column(access_token::Column::Id)
        .filter(access_token::Column::Permissions.eq("admin"))
        .filter(access_token::Column::OrganizationId.is_null())
        .filter(active(now))
        .into_tuple()
        .all(db)
        .await
}

/// A token minted with another, as revocation walks them.
pub struct Child {
    pub id: String,
    pub organization_id: Option<String>,
    pub revoked: bool,
}

/// The tokens minted with any of `parents` (one generation).
pub async fn children(db: &impl ConnectionTrait, parents: &[String]) -> Result<Vec<Child>, DbErr> {
    let rows: Vec<(String, Option<String>, Option<i64>)> = access_token::Entity::find()
        .select_only()
        .column(access_token::Column::Id)
        .column(access_token::Column::OrganizationId)
        .column(access_token::Column::RevokedAt)
        .filter(access_token::Column::ParentId.is_in(parents.iter().map(String::as_str)))
        .into_tuple()
        .all(db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|(id, organization_id, revoked_at)| Child {
            id,
            organization_id,
            revoked: revoked_at.is_some(),
        })
        .collect())
}

/// The tokens a scope may see: all of them, or those minted for its organization.
pub async fn list(db: &ScopedDb, paging: Paging) -> Result<Page<access_token::Model>, DbErr> {
    let mut select = access_token::Entity::find();
    if let Some(organization) = db.scope().organization() {
        select = select.filter(access_token::Column::OrganizationId.eq(organization));
    }
    page(
        db,
        select,
        access_token::Column::CreatedAt,
        access_token::Column::Id,
        paging,
    )
    .await
}
