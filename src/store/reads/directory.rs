//! Reading organizations, user schemas and roles.

use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, Select,
};

use crate::domain::{Scope, Timestamp};
use crate::query::TextMatch;
use crate::store::entities::{organization, role, user_schema};
use crate::store::reads::compile;
use crate::store::writes::events;
use crate::store::{Plans, ScopedDb, begin_snapshot};

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

/// A row that carries the instance sequence of its newest event.
pub(crate) trait Sequenced {
    fn sequence_mut(&mut self) -> &mut i64;
}

macro_rules! sequenced {
    ($($model:ty),*) => {
        $(impl Sequenced for $model {
            fn sequence_mut(&mut self) -> &mut i64 {
                &mut self.sequence
            }
        })*
    };
}

sequenced!(
    organization::Model,
    user_schema::Model,
    role::Model,
    crate::store::entities::access_token::Model
);

/// Rewrites the rows' sequences as the caller counts them (see `events::as_seen`).
pub(crate) async fn as_seen<M: Sequenced>(
    txn: &impl ConnectionTrait,
    scope: &Scope,
    rows: &mut [M],
) -> Result<(), DbErr> {
    if scope.organization().is_none() {
        return Ok(());
    }
    let seen = events::as_seen(txn, scope, rows.iter_mut().map(|r| *r.sequence_mut())).await?;
    for row in rows {
        let sequence = row.sequence_mut();
        *sequence = seen.get(sequence).copied().unwrap_or_default();
    }
    Ok(())
}

pub(crate) async fn page<E>(
    db: &ScopedDb,
    select: Select<E>,
    created: E::Column,
    id: E::Column,
    paging: Paging,
) -> Result<Page<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Send + Sync + Sequenced,
{
    let txn = begin_snapshot(db.connection(), Plans::PerValue).await?;
    let total = select.clone().count(&txn).await?;
    let order = if paging.ascending {
        sea_orm::Order::Asc
    } else {
        sea_orm::Order::Desc
    };
    let mut items = select
        .order_by(created, order.clone())
        .order_by(id, order)
        .offset(paging.offset)
        .limit(paging.limit)
        .all(&txn)
        .await?;
    as_seen(&txn, db.scope(), &mut items).await?;
    let processed = events::processed(&txn, db.scope()).await?;
    txn.commit().await?;
    Ok(Page {
        total,
        processed,
        items,
    })
}

/// One row by id, its sequence as the caller counts it.
async fn one<E>(db: &ScopedDb, select: Select<E>) -> Result<Option<E::Model>, DbErr>
where
    E: EntityTrait,
    E::Model: Send + Sync + Sequenced,
{
    let Some(row) = select.one(db.connection()).await? else {
        return Ok(None);
    };
    let mut rows = [row];
    as_seen(db.connection(), db.scope(), &mut rows).await?;
    let [row] = rows;
    Ok(Some(row))
}

/// One organization; another organization than a scoped caller's own is None, like a missing one.
pub async fn organization(db: &ScopedDb, id: &str) -> Result<Option<organization::Model>, DbErr> {
    if !db.scope().admits(id) {
        return Ok(None);
    }
    one(db, organization::Entity::find_by_id(id)).await
}

/// Organizations within the caller's scope, optionally those whose name matches `name`.
pub async fn organizations(
    db: &ScopedDb,
    name: Option<&TextMatch>,
    paging: Paging,
) -> Result<Page<organization::Model>, DbErr> {
    let mut select = organization::Entity::find();
    if let Some(own) = db.scope().organization() {
        select = select.filter(organization::Column::Id.eq(own));
    }
    if let Some(name) = name {
        select = select.filter(compile::organization_name(name));
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

pub async fn schema(db: &ScopedDb, id: &str) -> Result<Option<user_schema::Model>, DbErr> {
    one(db, user_schema::Entity::find_by_id(id)).await
}

pub async fn schemas(db: &ScopedDb, paging: Paging) -> Result<Page<user_schema::Model>, DbErr> {
    page(
        db,
        user_schema::Entity::find(),
        user_schema::Column::CreatedAt,
        user_schema::Column::Id,
        paging,
    )
    .await
}

pub async fn role(db: &ScopedDb, id: &str) -> Result<Option<role::Model>, DbErr> {
    one(db, role::Entity::find_by_id(id)).await
}

pub async fn roles(db: &ScopedDb, paging: Paging) -> Result<Page<role::Model>, DbErr> {
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
