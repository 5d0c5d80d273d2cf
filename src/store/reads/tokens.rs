//! Reading access tokens: authentication by secret hash, and listings within a scope.

use sea_orm::{ColumnTrait, Condition, DatabaseConnection, DbErr, EntityTrait, QueryFilter};

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
        .filter(access_token::Column::RevokedAt.is_null())
        .filter(
            Condition::any()
                .add(access_token::Column::ExpiresAt.is_null())
                .add(access_token::Column::ExpiresAt.gt(now.micros())),
        )
        .one(db)
        .await
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
