//! Reading organizations, user schemas and roles.

use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect, Select,
};

use crate::domain::Timestamp;
use crate::store::entities::{organization, role, user_schema};
use crate::store::writes::events;
use crate::store::{ScopedDb, begin_snapshot};

/// One page of any listing.
pub struct Page<T> {
    pub total: u64,
    pub processed: Option<(i64, Timestamp)>,
    pub items: Vec<T>,
}

/// Offset and limit (already checked against the page limits) and the direction.
#[derive(Clone, Copy, Debug)]
pub struct Paging {
    pub offset: u64,
    pub limit: u64,
    pub ascending: bool,
}

pub(crate) async fn page<E>(
    db: &DatabaseConnection,
    select: Select<E>,
    created: E::Column,
    id: E::Column,
    paging: Paging,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Send + Sync,
{
    let txn = begin_snapshot(db).await?;
    let total = select.clone().count(&txn).await?;
    let order = if paging.ascending {
        sea_orm::Order::Asc
    } else {
        sea_orm::Order::Desc
    };
    let items = select
        .order_by(created, order.clone())
        .order_by(id, order)
        .offset(paging.offset)
        .limit(paging.limit)
        .all(&txn)
        .await?;
    let processed = events::latest(&txn).await?;
    txn.commit().await?;
    Ok(Page {
        total,
        processed,
        items,
    })
}

/// One organization; another organization than a scoped caller's own is None, like a missing one.
pub async fn organization(db: &ScopedDb, id: &str) -> Result<Option<organization::Model>, DbErr> {
    if !db.scope().admits(id) {
        return Ok(None);
    }
    organization::Entity::find_by_id(id)
        .one(db.connection())
        .await
}

/// Organizations within the caller's scope, optionally filtered by a condition on their name.
pub async fn organizations(
    db: &ScopedDb,
    name: Option<sea_orm::Condition>,
    paging: Paging,
) -> Result<Page<organization::Model>, DbErr> {
    let mut select = organization::Entity::find();
    if let Some(own) = db.scope().organization() {
        select = select.filter(organization::Column::Id.eq(own));
    }
    if let Some(condition) = name {
        select = select.filter(condition);
    }
    page(
        db,
        select,
        organization::Column::CreatedAt,
        organization::Column::Id,
        paging,
    )
    .await
}

pub async fn schema(
    db: &DatabaseConnection,
    id: &str,
) -> Result<Option<user_schema::Model>, DbErr> {
    user_schema::Entity::find_by_id(id).one(db).await
}

pub async fn schemas(
    db: &DatabaseConnection,
    paging: Paging,
) -> Result<Page<user_schema::Model>, DbErr> {
    page(
        db,
        user_schema::Entity::find(),
        user_schema::Column::CreatedAt,
        user_schema::Column::Id,
        paging,
    )
    .await
}

pub async fn role(db: &DatabaseConnection, id: &str) -> Result<Option<role::Model>, DbErr> {
    role::Entity::find_by_id(id).one(db).await
}

pub async fn roles(db: &DatabaseConnection, paging: Paging) -> Result<Page<role::Model>, DbErr> {
    page(
        db,
        role::Entity::find(),
        role::Column::CreatedAt,
        role::Column::Id,
        paging,
    )
    .await
}

/// Whether a role exists (ListRoleUsers answers NotFound for a missing role).
pub async fn role_exists(db: &DatabaseConnection, id: &str) -> Result<bool, DbErr> {
    Ok(role::Entity::find()
        .filter(role::Column::Id.eq(id))
        .count(db)
        .await?
        > 0)
}
