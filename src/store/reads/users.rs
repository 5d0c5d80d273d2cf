//! Reading users with everything the API returns about them.

use sea_orm::sea_query::{Asterisk, Expr, ExprTrait};
use sea_orm::{ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryResult, QuerySelect};

use crate::domain::{
    Authenticators, Contact, SchemaRef, Scope, Timestamp, User, UserState, Verifiable,
};
use crate::error::Error;
use crate::limits::regex_searches::RegexSearches;
use crate::query::{Filter, Query, TextMatch, TextOp, UserSearch};
use crate::store::entities::user;
use crate::store::reads::{authenticators, compile, sequences};
use crate::store::{ScopedDb, begin_snapshot};

/// One page of a user search.
#[derive(Clone, Debug)]
pub struct UserPage {
    /// Distinct matching users, independent of offset and limit.
    pub total: u64,
    /// The newest event the page reflects, if the directory has any.
    pub processed: Option<(i64, Timestamp)>,
    pub users: Vec<User>,
}

/// The users matching `search` within the caller's scope: a scoped caller's search is narrowed
/// to its organization before it is compiled, so totals never count other organizations. A
/// search with a regex leaf holds a place of `regex_searches` while it runs (ResourceExhausted
/// when there is none).
pub async fn list_users(
    db: &ScopedDb,
    regex_searches: &RegexSearches,
    search: &UserSearch,
) -> Result<UserPage, Error> {
    let _place = match &search.query {
        Some(query) if query.uses_regex() => Some(regex_searches.enter().await?),
        _ => None,
    };
    Ok(page(db, search).await?)
}

/// A page in three statements of one snapshot: the total with the newest processed event, the
/// page's users with their sequences as the caller counts them, and all their authenticators.
async fn page(db: &ScopedDb, search: &UserSearch) -> Result<UserPage, DbErr> {
    let scope = db.scope();
    let query = narrowed(scope, search.query.clone());
    let backend = db.connection().get_database_backend();
    let txn = begin_snapshot(db.connection()).await?;
    let (total, processed_sequence, processed_at): (i64, Option<i64>, Option<i64>) =
        compile::filter_users(query.as_ref(), backend)
            .select_only()
            .expr_as(Expr::col(Asterisk).count(), "total")
            .expr_as(sequences::processed_sequence(scope), "processed_sequence")
            .expr_as(sequences::processed_at(scope), "processed_at")
            .into_tuple()
            .one(&txn)
            .await?
            .ok_or_else(|| DbErr::Custom("a count without its row".into()))?;
    let rows = compile::select_users(
        query.as_ref(),
        backend,
        search.sort,
        search.ascending,
        u64::try_from(total).unwrap_or_default(),
    )
    .offset(search.offset)
    .limit(search.limit)
    .expr_as(seen_sequence(scope), SEEN_SEQUENCE)
    .into_model::<SeenUser>()
    .all(&txn)
    .await?;
    let users = assemble(&txn, scope, rows).await?;
    txn.commit().await?;
    Ok(UserPage {
        total: u64::try_from(total)
            .map_err(|_| DbErr::Custom(format!("a negative count {total}")))?,
        processed: processed_at.map(|at| {
            (
                processed_sequence.unwrap_or_default(),
                Timestamp::from_micros(at),
            )
        }),
        users,
    })
}

fn narrowed(scope: &Scope, query: Option<Query>) -> Option<Query> {
    let Some(organization) = scope.organization() else {
        return query;
    };
    let own = Query::Filter(Filter::OrganizationId(TextMatch {
        op: TextOp::Equals,
        ignore_case: false,
        value: organization.to_owned(),
    }));
    Some(match query {
        None => own,
        Some(query) => Query::And(vec![own, query]),
    })
}

/// One user; a user outside the caller's scope is None, exactly like a missing one. Two
/// statements: the user with its sequence as the caller counts it, and its authenticators.
pub async fn get_user(db: &ScopedDb, id: &str) -> Result<Option<User>, DbErr> {
    let txn = begin_snapshot(db.connection()).await?;
    let Some(row) = user::Entity::find_by_id(id)
        .expr_as(seen_sequence(db.scope()), SEEN_SEQUENCE)
        .into_model::<SeenUser>()
        .one(&txn)
        .await?
        .filter(|row| db.scope().admits(&row.user.organization_id))
    else {
        return Ok(None);
    };
    let user = assemble(&txn, db.scope(), vec![row]).await?.pop();
    txn.commit().await?;
    Ok(user)
}

/// The column of a user row holding its sequence as the caller counts it.
const SEEN_SEQUENCE: &str = "seen_sequence";

fn seen_sequence(scope: &Scope) -> Expr {
    sequences::as_seen(scope, Expr::col((user::Entity, user::Column::Sequence)))
}

/// A user row with its sequence as the caller counts it (see `events::as_seen`).
struct SeenUser {
    user: user::Model,
    seen_sequence: i64,
}

impl FromQueryResult for SeenUser {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        Ok(Self {
            user: user::Model::from_query_result(row, prefix)?,
            seen_sequence: row.try_get(prefix, SEEN_SEQUENCE)?,
        })
    }
}

/// Adds the authenticators of all rows, loaded in one statement, keeping the rows' order.
async fn assemble(
    db: &impl ConnectionTrait,
    scope: &Scope,
    rows: Vec<SeenUser>,
) -> Result<Vec<User>, DbErr> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let ids: Vec<String> = rows.iter().map(|row| row.user.id.clone()).collect();
    let mut authenticators = authenticators::of_users(db, scope, &ids).await?;
    rows.into_iter()
        .map(
            |SeenUser {
                 mut user,
                 seen_sequence,
             }| {
                user.sequence = seen_sequence;
                let authenticators = authenticators.remove(&user.id).unwrap_or_default();
                user_from_row(user, authenticators)
            },
        )
        .collect()
}

fn user_from_row(row: user::Model, authenticators: Authenticators) -> Result<User, DbErr> {
    let state = UserState::from_number(row.state.into())
        .ok_or_else(|| DbErr::Custom(format!("user {} has unknown state {}", row.id, row.state)))?;
    let revision = u32::try_from(row.schema_revision).map_err(|_| {
        DbErr::Custom(format!(
            "user {} has schema revision {}",
            row.id, row.schema_revision
        ))
    })?;
    let verifiable =
        |value: Option<String>, is_verified| value.map(|value| Verifiable { value, is_verified });
    Ok(User {
        id: row.id,
        organization_id: row.organization_id,
        state,
        schema: SchemaRef {
            id: row.schema_id,
            schema_type: row.schema_type,
            revision,
        },
        data: row.data,
        contact: Contact {
            email: verifiable(row.email, row.email_verified),
            phone: verifiable(row.phone, row.phone_verified),
        },
        authenticators,
        last_login: row.last_login.map(Timestamp::from_micros),
        created_at: Timestamp::from_micros(row.created_at),
        changed_at: Timestamp::from_micros(row.changed_at),
        sequence: row.sequence,
    })
}
