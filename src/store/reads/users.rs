//! Reading users with everything the API returns about them.

use sea_orm::sea_query::Expr;
use sea_orm::{
    ConnectionTrait, DbErr, EntityTrait, FromQueryResult, QueryResult, QuerySelect, QueryTrait,
};

use crate::domain::{
    Authenticators, Contact, SchemaRef, Scope, Timestamp, User, UserState, Verifiable,
};
use crate::error::Error;
use crate::limits::regex_searches::RegexSearches;
use crate::query::{Cursor, Filter, Query, SortField, SortValue, TextMatch, TextOp, UserSearch};
use crate::store::entities::user;
use crate::store::reads::{authenticators, compile, sequences, totals};
use crate::store::{ScopedDb, begin_snapshot};

/// One page of a user search.
#[derive(Clone, Debug)]
pub struct UserPage {
    /// Distinct matching users, independent of offset and limit.
    pub total: u64,
    /// The newest event the page reflects, if the directory has any.
    pub processed: Option<(i64, Timestamp)>,
    pub users: Vec<User>,
    /// Where the next page starts (its last user's sort key); None on the last page.
    pub next: Option<Cursor>,
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

/// A page in three statements of one snapshot: the total (from the counters where they answer
/// it, see `totals`) with the newest processed event, the page's users with their sequences as
/// the caller counts them, and all their authenticators; four on SQLite for an OR matching
/// many, whose plan also needs every user's count (see `matches`).
async fn page(db: &ScopedDb, search: &UserSearch) -> Result<UserPage, DbErr> {
    let scope = db.scope();
    let query = narrowed(scope, search.query.clone());
    let backend = db.connection().get_database_backend();
    let txn = begin_snapshot(db.connection()).await?;
    let mut head = totals::select_total(query.as_ref(), backend);
    head.expr_as(sequences::processed_sequence(scope), "processed_sequence")
        .expr_as(sequences::processed_at(scope), "processed_at");
    let head = txn
        .query_one_raw(txn.get_database_backend().build(&head))
        .await?
        .ok_or_else(|| DbErr::Custom("a total without its row".into()))?;
    let total: i64 = head.try_get("", totals::TOTAL)?;
    let total =
        u64::try_from(total).map_err(|_| DbErr::Custom(format!("a negative total {total}")))?;
    let processed_sequence: Option<i64> = head.try_get("", "processed_sequence")?;
    let processed_at: Option<i64> = head.try_get("", "processed_at")?;
    let (rows, next) = rows(&txn, scope, query.as_ref(), search, total).await?;
    let users = assemble(&txn, scope, rows).await?;
    txn.commit().await?;
    Ok(UserPage {
        total,
        processed: processed_at.map(|at| {
            (
                processed_sequence.unwrap_or_default(),
                Timestamp::from_micros(at),
            )
        }),
        users,
        next,
    })
}

/// The page's rows, at the offset or after the cursor, and where the next page starts. One row
/// more than the page is read, which tells exactly whether there is a next page.
async fn rows(
    txn: &impl ConnectionTrait,
    scope: &Scope,
    query: Option<&Query>,
    search: &UserSearch,
    total: u64,
) -> Result<(Vec<SeenUser>, Option<Cursor>), DbErr> {
    let (sort, ascending) = (search.sort, search.ascending);
    let backend = txn.get_database_backend();
    let wanted = search.limit.saturating_add(1);
    let matches = matches(txn, query, total, search.offset.saturating_add(wanted)).await?;
    let selects = match &search.after {
        None => vec![
            compile::select_users(query, backend, sort, ascending, matches).offset(search.offset),
        ],
        Some(cursor) => {
            compile::select_users_after(query, backend, matches, sort, ascending, cursor)
        }
    };
    let mut rows = Vec::new();
    // The selects are consecutive parts of the order: the next one only when the page is short.
    for select in selects {
        let missing = wanted.saturating_sub(rows.len() as u64);
        if missing == 0 {
            break;
        }
        rows.extend(
            select
                .limit(missing)
                .expr_as(seen_sequence(scope), SEEN_SEQUENCE)
                .into_model::<SeenUser>()
                .all(txn)
                .await?,
        );
    }
    if rows.len() as u64 <= search.limit {
        return Ok((rows, None));
    }
    rows.truncate(search.limit as usize);
    let next = rows.last().map(|row| cursor(&row.user, sort));
    Ok((rows, next))
}

/// How many users the page's query matches, with every user of the directory (from the
/// counters) where the plan depends on it (see `compile::Matches`): `reach` rows are read.
async fn matches(
    txn: &impl ConnectionTrait,
    query: Option<&Query>,
    total: u64,
    reach: u64,
) -> Result<compile::Matches, DbErr> {
    let backend = txn.get_database_backend();
    if !compile::Matches::may_walk(query, backend, total) {
        return Ok(compile::Matches::total(total));
    }
    let users = txn
        .query_one_raw(backend.build(&totals::select_total(None, backend)))
        .await?
        .ok_or_else(|| DbErr::Custom("a total without its row".into()))?
        .try_get::<i64>("", totals::TOTAL)?;
    let users = u64::try_from(users).unwrap_or_default();
    Ok(compile::Matches::walking(
        query, backend, total, users, reach,
    ))
}

/// A row's position in the order of `sort` (the columns of `compile::select_users`' order).
fn cursor(row: &user::Model, sort: SortField) -> Cursor {
    let text = |value: &Option<String>| match value {
        Some(value) => SortValue::Text(value.clone()),
        None => SortValue::Null,
    };
    let value = match sort {
        SortField::Id => SortValue::None,
        SortField::CreationDate => SortValue::Int(row.created_at),
        SortField::ChangeDate => SortValue::Int(row.changed_at),
        SortField::Email => text(&row.email_lower),
        SortField::Phone => text(&row.phone),
        SortField::State => SortValue::Int(row.state.into()),
        SortField::SchemaId => SortValue::Text(row.schema_id.clone()),
        SortField::SchemaType => SortValue::Text(row.schema_type_lower.clone()),
    };
    Cursor {
        value,
        id: row.id.clone(),
    }
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

/// One user; a user outside the caller's scope is None, exactly like a missing one. One
/// statement, the user joined with its authenticators (see `authenticators::with_user`): a
/// single statement sees one snapshot on both backends, so the lookup needs no transaction
/// (on PostgreSQL it took five round trips: BEGIN, the snapshot's settings, the user, its
/// authenticators, COMMIT). It runs without the snapshot's `statement_timeout` (see `begin_snapshot`): a
/// primary key and the authenticator tables' user indexes bound its work, whatever the input.
pub async fn get_user(db: &ScopedDb, id: &str) -> Result<Option<User>, DbErr> {
    let scope = db.scope();
    let user = user::Entity::find_by_id(id)
        .expr_as(seen_sequence(scope), SEEN_SEQUENCE)
        .into_query();
    let connection = db.connection();
    let statement = authenticators::with_user(scope, user, id);
    let rows = connection
        .query_all_raw(connection.get_database_backend().build(&statement))
        .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let SeenUser {
        mut user,
        seen_sequence,
    } = SeenUser::from_query_result(first, "")?;
    if !scope.admits(&user.organization_id) {
        return Ok(None);
    }
    user.sequence = seen_sequence;
    let mut found = Authenticators::default();
    for row in &rows {
        authenticators::add_joined(&mut found, row)?;
    }
    user_from_row(user, found).map(Some)
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
