//! Reading users with everything the API returns about them.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, ExprTrait, Query as Sql};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, FromQueryResult,
    QueryResult, QuerySelect,
};

use crate::domain::{
    Authenticators, Contact, SchemaRef, Scope, Timestamp, User, UserState, Verifiable,
};
use crate::error::Error;
use crate::limits::regex_searches::RegexSearches;
use crate::query::{Cursor, Filter, Query, SortField, SortValue, TextMatch, TextOp, UserSearch};
use crate::store::authenticators;
use crate::store::entities::{authentication_key, user};
use crate::store::reads::{compile, sequences, totals};
use crate::store::{Plans, ScopedDb, begin_snapshot};

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

/// A page in two statements of one snapshot: the total (from the counters where they answer
/// it, see `totals`) with the newest processed event, and the page's users with their
/// sequences as the caller counts them and their authenticators (see `store::authenticators`;
/// on SQLite, for a query with an OR, the total's statement also reads every user's count,
/// which the page's plan depends on, see `matches`); one on SQLite, without the snapshot, for a
/// page whose plan does not depend on its total (see `page_in_one_statement`).
async fn page(db: &ScopedDb, search: &UserSearch) -> Result<UserPage, DbErr> {
    let scope = db.scope();
    let query = narrowed(scope, search.query.clone());
    let backend = db.connection().get_database_backend();
    if search.after.is_none()
        && compile::plans_without_total(query.as_ref(), backend)
        && let Some(page) =
            page_in_one_statement(db.connection(), scope, query.as_ref(), search).await?
    {
        return Ok(page);
    }
    // Planned once for all values where an index finds the matches whatever the value (see
    // `compile::Planning`): PostgreSQL then skips planning each statement again.
    let planning = compile::planning(query.as_ref());
    let mut planned_once = planning != compile::Planning::PerValue;
    let plans = if planned_once {
        Plans::Generic
    } else {
        Plans::PerValue
    };
    let txn = begin_snapshot(db.connection(), plans).await?;
    let mut head = totals::select_total(query.as_ref(), backend, planned_once);
    head.expr_as(sequences::processed_sequence(scope), PROCESSED_SEQUENCE)
        .expr_as(sequences::processed_at(scope), PROCESSED_AT);
    // Every user's count (from the counters), should the page's plan need it (see `matches`):
    // in this statement, not one more round trip.
    let users_counted = compile::Matches::may_walk_some(query.as_ref(), backend);
    if users_counted {
        head.expr_as(
            Expr::SubQuery(
                None,
                Box::new(totals::select_total(None, backend, false).into()),
            ),
            USERS,
        );
    }
    let head = txn
        .query_one_raw(txn.get_database_backend().build(&head))
        .await?
        .ok_or_else(|| DbErr::Custom("a total without its row".into()))?;
    let total: i64 = head.try_get("", totals::TOTAL)?;
    let total =
        u64::try_from(total).map_err(|_| DbErr::Custom(format!("a negative total {total}")))?;
    let processed_sequence: Option<i64> = head.try_get("", PROCESSED_SEQUENCE)?;
    let processed_at: Option<i64> = head.try_get("", PROCESSED_AT)?;
    let users = if users_counted {
        Some(head.try_get::<i64>("", USERS)?)
    } else {
        None
    };
    if planning == compile::Planning::GenericWhileFew && total > compile::FEW_MATCHES {
        txn.plan_per_value().await?;
        planned_once = false;
    }
    let matches = matches(query.as_ref(), backend, total, users, search);
    let (rows, next) = rows(&txn, scope, query.as_ref(), search, matches, planned_once).await?;
    let users = assemble(rows)?;
    txn.commit().await?;
    Ok(UserPage {
        total,
        processed: processed(processed_sequence, processed_at),
        users,
        next,
    })
}

/// The newest event a page reflects, from the sequence and time its statement read (the time
/// is NULL exactly when there is no event, see `sequences::processed_at`).
fn processed(sequence: Option<i64>, at: Option<i64>) -> Option<(i64, Timestamp)> {
    at.map(|at| (sequence.unwrap_or_default(), Timestamp::from_micros(at)))
}

/// A page read in one statement, without a snapshot (SQLite, for the queries whose plan does not
/// depend on their total, see `compile::plans_without_total`: no query, an organization, a
/// state, an equality or a prefix): its total (from the counters where they answer it, counted
/// otherwise) and the newest event are columns of the page's statement, and one statement
/// reads one state of the database, so they agree with its rows as a snapshot's do. Each
/// statement, BEGIN and COMMIT is a round trip to SQLite's worker thread and back, which
/// costs about what the statement does for one user: the snapshot took four. None for an
/// empty page, whose statement returns no row to carry them: the snapshot reads it then.
async fn page_in_one_statement(
    db: &DatabaseConnection,
    scope: &Scope,
    query: Option<&Query>,
    search: &UserSearch,
) -> Result<Option<UserPage>, DbErr> {
    let backend = db.get_database_backend();
    let total = totals::select_total(query, backend, false);
    // Planned as for any total, which is how these queries are planned.
    let mut rows = compile::select_users(
        query,
        backend,
        search.sort,
        search.ascending,
        compile::Matches::total(0),
    )
    .offset(search.offset)
    .limit(search.limit.saturating_add(1))
    .expr_as(seen_sequence(scope), SEEN_SEQUENCE)
    .expr_as(key_sequences(scope, backend), KEY_SEQUENCES)
    .expr_as(Expr::SubQuery(None, Box::new(total.into())), totals::TOTAL)
    .expr_as(sequences::processed_sequence(scope), PROCESSED_SEQUENCE)
    .expr_as(sequences::processed_at(scope), PROCESSED_AT)
    .into_model::<PageRow>()
    .all(db)
    .await?;
    let Some(first) = rows.first() else {
        return Ok(None);
    };
    let total = u64::try_from(first.total)
        .map_err(|_| DbErr::Custom(format!("a negative total {}", first.total)))?;
    let processed = processed(first.processed_sequence, first.processed_at);
    let mut next = None;
    if rows.len() as u64 > search.limit {
        rows.truncate(search.limit as usize);
        next = rows.last().map(|row| cursor(&row.user.user, search.sort));
    }
    let users = assemble(rows.into_iter().map(|row| row.user).collect())?;
    Ok(Some(UserPage {
        total,
        processed,
        users,
        next,
    }))
}

const PROCESSED_SEQUENCE: &str = "processed_sequence";
const USERS: &str = "users";
const PROCESSED_AT: &str = "processed_at";

/// A user row of [`page_in_one_statement`], with the total and the newest event its statement
/// read.
struct PageRow {
    user: SeenUser,
    total: i64,
    processed_sequence: Option<i64>,
    processed_at: Option<i64>,
}

impl FromQueryResult for PageRow {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        Ok(Self {
            user: SeenUser::from_query_result(row, prefix)?,
            total: row.try_get(prefix, totals::TOTAL)?,
            processed_sequence: row.try_get(prefix, PROCESSED_SEQUENCE)?,
            processed_at: row.try_get(prefix, PROCESSED_AT)?,
        })
    }
}

/// The page's rows, at the offset or after the cursor, and where the next page starts. One row
/// more than the page is read, which tells exactly whether there is a next page.
async fn rows(
    txn: &impl ConnectionTrait,
    scope: &Scope,
    query: Option<&Query>,
    search: &UserSearch,
    matches: compile::Matches,
    planned_once: bool,
) -> Result<(Vec<SeenUser>, Option<Cursor>), DbErr> {
    let (sort, ascending) = (search.sort, search.ascending);
    let backend = txn.get_database_backend();
    let wanted = search.limit.saturating_add(1);
    let matches = matches.planned_once(planned_once);
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
                .expr_as(key_sequences(scope, backend), KEY_SEQUENCES)
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

/// How many users the page's query matches, with every user of the directory where the plan
/// depends on it (see `compile::Matches`; `users`, read beside the total where
/// `Matches::may_walk_some`): the page reads its offset, its rows and the one after them.
fn matches(
    query: Option<&Query>,
    backend: DbBackend,
    total: u64,
    users: Option<i64>,
    search: &UserSearch,
) -> compile::Matches {
    match users {
        Some(users) if compile::Matches::may_walk(query, backend, total) => {
            let reach = search.offset.saturating_add(search.limit.saturating_add(1));
            let users = u64::try_from(users).unwrap_or_default();
            compile::Matches::walking(query, backend, total, users, reach)
        }
        _ => compile::Matches::total(total),
    }
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
/// statement: the user's row holds its authenticators (`store::authenticators`), so the lookup
/// needs no transaction (on PostgreSQL it once took five round trips: BEGIN, the snapshot's
/// settings, the user, its authenticators, COMMIT). It runs without the snapshot's
/// `statement_timeout` (see `begin_snapshot`): a primary key and the user's keys bound its
/// work, whatever the input.
pub async fn get_user(db: &ScopedDb, id: &str) -> Result<Option<User>, DbErr> {
    let scope = db.scope();
    let backend = db.connection().get_database_backend();
    let found = user::Entity::find_by_id(id)
        .expr_as(seen_sequence(scope), SEEN_SEQUENCE)
        .expr_as(key_sequences(scope, backend), KEY_SEQUENCES)
        .into_model::<SeenUser>()
        .one(db.connection())
        .await?;
    let Some(found) = found else {
        return Ok(None);
    };
    if !scope.admits(&found.user.organization_id) {
        return Ok(None);
    }
    Ok(assemble(vec![found])?.pop())
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
    /// See [`key_sequences`].
    key_sequences: Option<String>,
}

impl FromQueryResult for SeenUser {
    fn from_query_result(row: &QueryResult, prefix: &str) -> Result<Self, DbErr> {
        Ok(Self {
            user: user::Model::from_query_result(row, prefix)?,
            seen_sequence: row.try_get(prefix, SEEN_SEQUENCE)?,
            key_sequences: row.try_get(prefix, KEY_SEQUENCES)?,
        })
    }
}

/// The users of `rows`, in their order, with the authenticators their rows hold.
fn assemble(rows: Vec<SeenUser>) -> Result<Vec<User>, DbErr> {
    rows.into_iter()
        .map(
            |SeenUser {
                 mut user,
                 seen_sequence,
                 key_sequences,
             }| {
                user.sequence = seen_sequence;
                let mut found = authenticators::read(&user.id, user.authenticators.as_deref())?;
                keys_as_seen(&user.id, &mut found, key_sequences.as_deref())?;
                user_from_row(user, found)
            },
        )
        .collect()
}

/// For a caller limited to an organization, the user's authentication keys with their
/// sequences as it counts them (`sequences::as_seen`), as a JSON array of `[key id, sequence]`
/// folded into the user's row; NULL for an instance-wide caller, which counts the instance
/// sequences the documents hold. A key's sequence is the instance's; an organization counts
/// its own stream, which the document cannot know for every reader.
fn key_sequences(scope: &Scope, backend: DbBackend) -> Expr {
    use authentication_key::Column as K;
    if scope.organization().is_none() {
        return Expr::val(None::<String>);
    }
    let key = |column: K| Expr::col((authentication_key::Entity, column));
    let entry = [key(K::Id), sequences::as_seen(scope, key(K::Sequence))];
    Expr::from(
        Sql::select()
            .expr(authenticators::json_rows(backend, entry))
            .from(authentication_key::Entity)
            .and_where(key(K::UserId).equals((user::Entity, user::Column::Id)))
            .to_owned(),
    )
}

/// The column of a user row holding [`key_sequences`].
const KEY_SEQUENCES: &str = "key_sequences";

/// Gives the keys of `authenticators` their sequences as the caller counts them, from the row's
/// [`key_sequences`] (None for an instance-wide caller: they stay).
fn keys_as_seen(
    user_id: &str,
    authenticators: &mut Authenticators,
    key_sequences: Option<&str>,
) -> Result<(), DbErr> {
    let Some(key_sequences) = key_sequences else {
        return Ok(());
    };
    let seen: HashMap<String, i64> = serde_json::from_str::<Vec<(String, i64)>>(key_sequences)
        .map_err(|error| DbErr::Custom(format!("the key sequences of user {user_id}: {error}")))?
        .into_iter()
        .collect();
    for key in &mut authenticators.authentication_keys {
        key.sequence = *seen.get(&key.id).ok_or_else(|| {
            DbErr::Custom(format!(
                "user {user_id}: key {} is in its document, not in its rows",
                key.id
            ))
        })?;
    }
    Ok(())
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
