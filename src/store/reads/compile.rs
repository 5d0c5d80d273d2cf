//! The store's SQL for searches: compiles the query tree into sea-query expressions over the
//! `users` table (and a text match on organization names with the same rules). Values are
//! bound as parameters, LIKE patterns are escaped, and every leaf is two-valued (never SQL
//! NULL), so NOT is the true complement of its inner query.
//!
//! Substring searches (contains, ends-with) are what a B-tree cannot answer. PostgreSQL's
//! pg_trgm indexes serve their LIKE directly; on SQLite the LIKE is narrowed by the FTS5
//! trigram tables of migration 10 (see [`trigram_narrowing`]), so the SQL differs by backend.

use sea_orm::sea_query::{
    Alias, Asterisk, BinOper, Condition, Expr, ExprTrait, Func, LikeExpr, NullOrdering, Order,
    Query as Sql, SelectStatement, UnionType,
};
use sea_orm::{
    ColumnTrait, DbBackend, EntityTrait, JoinType, QueryFilter, QueryOrder, QuerySelect,
    QueryTrait, Select,
};

use crate::domain::fold_case;
use crate::query::{
    CompareOp, Comparison, Cursor, Filter, Query, SortField, SortValue, TextMatch, TextOp,
};
use crate::store::entities::{organization, role_assignment, user, username};

/// The escape character of every LIKE pattern we build.
const LIKE_ESCAPE: char = '\\';

/// The database a search compiles for, and whether SQLite's trigram tables may narrow its
/// substring matches (see [`trigram_narrowing`]).
#[derive(Clone, Copy)]
struct Target {
    backend: DbBackend,
    narrow: bool,
    /// Keep the ORs among the top-level conjuncts out of index use (see [`Matches`]).
    walk_order: bool,
    /// The statement is planned once for all values (a PostgreSQL generic plan, see
    /// [`Planning`]): a prefix is written as the range that lets such a plan seek its index.
    planned_once: bool,
}

/// The WHERE condition of a query, for the database `backend` it runs on.
pub fn condition(query: &Query, backend: DbBackend) -> Condition {
    target_condition(
        query,
        Target {
            backend,
            narrow: true,
            walk_order: false,
            planned_once: false,
        },
    )
}

fn target_condition(query: &Query, target: Target) -> Condition {
    match query {
        Query::And(queries) => queries.iter().fold(Condition::all(), |all, query| {
            all.add(target_condition(query, target))
        }),
        Query::Or(queries) => queries.iter().fold(Condition::any(), |any, query| {
            any.add(target_condition(query, target))
        }),
        Query::Not(query) => target_condition(query, target).not(),
        Query::Filter(filter) => Condition::all().add(filter_expr(filter, target)),
    }
}

/// Users matching the query (all users for None), unordered: what a count needs;
/// `planned_once` for a statement planned once for all values (see [`Planning`]).
pub fn filter_users(
    query: Option<&Query>,
    backend: DbBackend,
    planned_once: bool,
) -> Select<user::Entity> {
    filter_target(
        query,
        Target {
            backend,
            narrow: true,
            walk_order: false,
            planned_once,
        },
    )
}

fn filter_target(query: Option<&Query>, target: Target) -> Select<user::Entity> {
    let select = user::Entity::find();
    match query {
        Some(query) if target.walk_order => select.filter(walking_condition(query, target)),
        Some(query) => select.filter(target_condition(query, target)),
        None => select,
    }
}

/// The query's condition with every OR among its top-level conjuncts behind SQLite's unary
/// `+`, its documented way of keeping a term from index use: no MULTI-INDEX OR then, so the
/// page walks the index of its order (or of an indexed conjunct that has it, an organization's
/// `(organization_id, created_at, id)`) and tests the ORs on each row. The `+` changes no
/// value: the OR is 1 or 0, never NULL (every leaf is two-valued).
fn walking_condition(query: &Query, target: Target) -> Condition {
    let mut conjuncts = Vec::new();
    conjuncts_of(query, &mut conjuncts);
    conjuncts
        .into_iter()
        .fold(Condition::all(), |all, conjunct| match conjunct {
            // `?` is where sea-query's SQLite builder puts the expression.
            Query::Or(_) => all.add(Expr::cust_with_expr(
                "+(?)",
                target_condition(conjunct, target),
            )),
            other => all.add(target_condition(other, target)),
        })
}

/// What decides a page's plan: how many users its query matches (the exact total of the same
/// snapshot, see [`FEW_MATCHES`]) and, on SQLite, whether the page walks the index of its order
/// past an OR of indexed terms.
///
/// SQLite serves an OR whose every branch has an index (`state = 4 OR email LIKE 'ada%'`) by
/// reading each branch's matches through its index, merging them and sorting them all for the
/// page (MULTI-INDEX OR), however many they are: 40,000 full rows read and sorted for a page of
/// 100 (190 ms at a million users). Walking the index of the page's order and testing the OR on
/// each row reads about `reach × users / total` rows instead (3 ms there). The planner
/// cannot compare the two, it does not know how many match; the total says it exactly. So the
/// page walks where that costs fewer rows than the matches: `total² > reach × users`.
#[derive(Clone, Copy, Debug)]
pub struct Matches {
    pub total: u64,
    walk_order: bool,
    /// The page is planned once for all values (see [`Planning`]).
    planned_once: bool,
}

impl Matches {
    /// `total` matches, the plan left to the total alone.
    pub fn total(total: u64) -> Self {
        Self {
            total,
            walk_order: false,
            planned_once: false,
        }
    }

    /// The same page, planned once for all values where `planned_once` (see [`Planning`]).
    pub fn planned_once(self, planned_once: bool) -> Self {
        Self {
            planned_once,
            ..self
        }
    }

    /// Whether [`Matches::walking`] could walk this page, so that the caller counts every user
    /// for it (only then).
    pub fn may_walk(query: Option<&Query>, backend: DbBackend, total: u64) -> bool {
        total > FEW_MATCHES && Self::may_walk_some(query, backend)
    }

    /// Whether [`Matches::walking`] could walk this page for some total: the caller may read
    /// every user's count beside the total, in the same statement.
    pub fn may_walk_some(query: Option<&Query>, backend: DbBackend) -> bool {
        backend == DbBackend::Sqlite && query.is_some_and(has_or_conjunct)
    }

    /// `total` matches among `users` (every user of the table, which is what a walk passes),
    /// for a page that reads `reach` rows (offset, page and the one after it).
    pub fn walking(
        query: Option<&Query>,
        backend: DbBackend,
        total: u64,
        users: u64,
        reach: u64,
    ) -> Self {
        let walk_order = Self::may_walk(query, backend, total)
            && u128::from(total) * u128::from(total) > u128::from(reach) * u128::from(users);
        Self {
            total,
            walk_order,
            planned_once: false,
        }
    }
}

fn has_or_conjunct(query: &Query) -> bool {
    let mut conjuncts = Vec::new();
    conjuncts_of(query, &mut conjuncts);
    conjuncts.iter().any(|q| matches!(q, Query::Or(_)))
}

/// Users matching the query, in the requested order, planned by `matches` (see [`Matches`]).
pub fn select_users(
    query: Option<&Query>,
    backend: DbBackend,
    sort: SortField,
    ascending: bool,
    matches: Matches,
) -> Select<user::Entity> {
    if let Some(walk) = RoleWalk::plan(query, sort, matches.total) {
        return walk.page(backend, matches, ascending, None);
    }
    order(matching(query, backend, matches), sort, ascending)
}

/// The users a page reads from, planned by how many match (see [`FEW_MATCHES`] and
/// [`Matches`]): the first page and every page after a token's seek start here.
fn matching(query: Option<&Query>, backend: DbBackend, matches: Matches) -> Select<user::Entity> {
    let few = matches.total <= FEW_MATCHES;
    // Many matches: walking the index of the page's order fills a page soon, where reading
    // every match out of the trigram tables first would cost what they match.
    let select = filter_target(
        query,
        Target {
            backend,
            narrow: few,
            walk_order: matches.walk_order,
            planned_once: matches.planned_once,
        },
    );
    if backend == DbBackend::Postgres && query.is_some() && few {
        all_matches_first(select)
    } else {
        select
    }
}

/// At most this many matches, a page finds all of them first and sorts them: on PostgreSQL
/// through [`all_matches_first`], on SQLite through the trigram tables; more, and a PostgreSQL
/// page leaves the plan to the planner, a SQLite page tests the plain LIKE (the count still
/// narrows). The planner guesses
/// how many rows a substring LIKE matches, and where it guesses many it walks the index of
/// the page's order and tests every row until the page is full: for a match that few users
/// have, that is most of the table (80,000 rows, 60 ms at 200,000 users, for 230 matches),
/// where the trigram index finds them all in a few ms and sorting them is nothing. The count
/// is exact, so the choice needs no guess. Above this, matches are dense enough for the walk
/// to fill a page soon, and sorting every match would cost more than the walk.
pub const FEW_MATCHES: u64 = 1_000;

/// `SELECT … FROM (SELECT * FROM users WHERE … OFFSET 0) AS users`: PostgreSQL never pulls a
/// subquery with an OFFSET up into its parent, so it plans the matches alone (by the trigram
/// or B-tree index that finds them) and the page's order and limit apply to those. The alias
/// keeps the name `users`, so everything the caller adds still names `users`' columns.
fn all_matches_first(matches: Select<user::Entity>) -> Select<user::Entity> {
    let mut inner = matches.into_query();
    inner.offset(0);
    let mut page = user::Entity::find();
    QuerySelect::query(&mut page)
        .from_clear()
        .from_subquery(inner, user::Entity);
    page
}

/// The sorted column of a sort and whether it may be NULL; None when the id alone orders.
fn sort_column(sort: SortField) -> Option<(user::Column, bool)> {
    use user::Column as C;
    match sort {
        SortField::Id => None,
        SortField::CreationDate => Some((C::CreatedAt, false)),
        SortField::ChangeDate => Some((C::ChangedAt, false)),
        SortField::Email => Some((C::EmailLower, true)),
        SortField::Phone => Some((C::Phone, true)),
        SortField::State => Some((C::State, false)),
        SortField::SchemaId => Some((C::SchemaId, false)),
        SortField::SchemaType => Some((C::SchemaTypeLower, false)),
    }
}

fn direction(ascending: bool) -> Order {
    if ascending { Order::Asc } else { Order::Desc }
}

fn order(select: Select<user::Entity>, sort: SortField, ascending: bool) -> Select<user::Entity> {
    let direction = direction(ascending);
    let select = match sort_column(sort) {
        // Users without the sorted value come last in both directions.
        Some((column, true)) => {
            select.order_by_with_nulls(column, direction.clone(), NullOrdering::Last)
        }
        // A plain ORDER BY on NOT NULL columns, so that PostgreSQL can read the index backwards
        // for DESC (an explicit NULLS LAST would not match the index and force a full sort).
        Some((column, false)) => select.order_by(column, direction.clone()),
        None => select,
    };
    // The id breaks ties, in the same direction: ids are UUIDv7, so this is creation order.
    select.order_by(user::Column::Id, direction)
}

/// The users of `query` strictly after `cursor` in the order of [`select_users`], as selects to
/// run in turn until the page is full: together they are that order, each one a seek in the
/// index that serves the first page ((column, id) or the composite ones ending with it).
///
/// The seek is the row value `(column, id) > (value, id)` (`<` descending). A nullable column
/// puts its NULL group last in both directions, which no row comparison can say (NULL compares
/// unknown), so there the rest of the valued rows and then the NULL group are two selects,
/// each an index range; a cursor in the NULL group only has the second. Within one segment
/// every row is valued or every row is NULL, so a plain `ORDER BY column, id` is the same
/// order, and it is the (column, id) index's order or its backward scan on both backends (also
/// for the NULL group: ordered by the id alone, PostgreSQL would not see that the index under
/// `column IS NULL` is in id order, and filter the primary key instead).
pub fn select_users_after(
    query: Option<&Query>,
    backend: DbBackend,
    matches: Matches,
    sort: SortField,
    ascending: bool,
    cursor: &Cursor,
) -> Vec<Select<user::Entity>> {
    use user::Column as C;
    if let Some(walk) = RoleWalk::plan(query, sort, matches.total) {
        return vec![walk.page(backend, matches, ascending, Some(cursor))];
    }
    let id = Expr::col((user::Entity, C::Id));
    let after_id = || {
        if ascending {
            id.clone().gt(cursor.id.as_str())
        } else {
            id.clone().lt(cursor.id.as_str())
        }
    };
    let segment = |condition: Expr| {
        let select = matching(query, backend, matches).filter(condition);
        let select = match sort_column(sort) {
            Some((column, _)) => select.order_by(column, direction(ascending)),
            None => select,
        };
        select.order_by(C::Id, direction(ascending))
    };
    let value = match &cursor.value {
        SortValue::Int(value) => Some(Expr::val(*value)),
        SortValue::Text(value) => Some(Expr::val(value.as_str())),
        SortValue::None | SortValue::Null => None,
    };
    match (sort_column(sort), value) {
        // Sorting by id, or a key without a value where the sort has one (never issued: a
        // token's key is checked against its sort when it is opened): the id alone.
        (None, _) | (Some((_, false)), None) => vec![segment(after_id())],
        (Some((column, nullable)), Some(value)) => {
            let col = Expr::col((user::Entity, column));
            let key = Expr::tuple([col.clone(), id.clone()]);
            let at = Expr::tuple([value, Expr::val(cursor.id.as_str())]);
            let rest = if ascending { key.gt(at) } else { key.lt(at) };
            if nullable {
                vec![
                    segment(col.clone().is_not_null().and(rest)),
                    segment(col.is_null()),
                ]
            } else {
                vec![segment(rest)]
            }
        }
        // In the NULL group: the rest of it.
        (Some((column, true)), None) => {
            let col = Expr::col((user::Entity, column));
            vec![segment(col.is_null().and(after_id()))]
        }
    }
}

/// A page of one role's holders read from the role's assignments in the page's order: the
/// index (role_id, user_created_at, user_id) of migration 11 for the default order (creation
/// date, the id breaking ties), the primary key (role_id, user_id) for the id order; each row
/// then finds its user by primary key and is tested for the rest of the query. A page costs
/// what it reads, however many hold the role, where testing the role as an `IN` would read
/// and sort every holder, or walk all users in page order testing each for the role.
struct RoleWalk<'q> {
    role: &'q str,
    /// The query's other conjuncts, None when the role is the whole query.
    rest: Option<Query>,
    by_creation: bool,
}

impl<'q> RoleWalk<'q> {
    /// The walk for a query that requires one role (a conjunct of its top-level AND, as
    /// ListRoleUsers and Logto's role users ask), sorted by creation date or id. Not when the
    /// rest is selective (a few matches of a text search): finding those first and sorting
    /// them is cheaper than walking holders until the page is full.
    fn plan(query: Option<&'q Query>, sort: SortField, total: u64) -> Option<Self> {
        let by_creation = match sort {
            SortField::CreationDate => true,
            SortField::Id => false,
            _ => return None,
        };
        let mut conjuncts = Vec::new();
        conjuncts_of(query?, &mut conjuncts);
        let at = conjuncts
            .iter()
            .position(|q| matches!(q, Query::Filter(Filter::Role(_))))?;
        let Query::Filter(Filter::Role(role)) = conjuncts.remove(at) else {
            unreachable!("the position of a role filter")
        };
        let broad = |q: &&Query| {
            matches!(
                q,
                Query::Filter(Filter::State(_))
                    | Query::Filter(Filter::OrganizationId(TextMatch {
                        op: TextOp::Equals,
                        ignore_case: false,
                        ..
                    }))
            )
        };
        if total <= FEW_MATCHES && !conjuncts.iter().all(broad) {
            return None;
        }
        let rest = match conjuncts.len() {
            0 => None,
            1 => Some(conjuncts[0].clone()),
            _ => Some(Query::And(conjuncts.into_iter().cloned().collect())),
        };
        Some(Self {
            role: role.as_str(),
            rest,
            by_creation,
        })
    }

    /// The page's select, from the start of the order or strictly after `cursor`.
    fn page(
        &self,
        backend: DbBackend,
        matches: Matches,
        ascending: bool,
        cursor: Option<&Cursor>,
    ) -> Select<user::Entity> {
        use role_assignment::Column as R;
        let column = |c: R| Expr::col((role_assignment::Entity, c));
        let holder = Expr::col((user::Entity, user::Column::Id))
            .equals((role_assignment::Entity, R::UserId));
        let mut holders = filter_target(
            self.rest.as_ref(),
            Target {
                backend,
                narrow: matches.total <= FEW_MATCHES,
                walk_order: false,
                planned_once: matches.planned_once,
            },
        )
        .filter(column(R::RoleId).eq(self.role));
        // The assignments lead. SQLite keeps the left table of a CROSS JOIN as the outer loop
        // (its way to fix a join order), where its planner would otherwise start from an
        // index of `users` that matches the rest of the query, and sort; a CROSS JOIN has no
        // ON, so the join condition is in the WHERE. PostgreSQL orders joins by cost.
        let join = match backend {
            DbBackend::Sqlite => {
                holders = holders.filter(holder.clone());
                JoinType::CrossJoin
            }
            _ => JoinType::InnerJoin,
        };
        QuerySelect::query(&mut holders)
            .from_clear()
            .from(role_assignment::Entity)
            .join(join, user::Entity, holder);
        // The order and the seek name the assignment's columns, not the user's equal ones:
        // only then do both planners see that the index yields them in order.
        let seek = |key: Expr, at: Expr| if ascending { key.gt(at) } else { key.lt(at) };
        let holders = match (cursor, self.by_creation) {
            (None, _) => holders,
            (
                Some(Cursor {
                    value: SortValue::Int(created),
                    id,
                }),
                true,
            ) => holders.filter(seek(
                Expr::tuple([column(R::UserCreatedAt), column(R::UserId)]),
                Expr::tuple([Expr::val(*created), Expr::val(id.as_str())]),
            )),
            // By id; or a creation-date key without its value, never issued (a token's key is
            // checked against its sort when it is opened): the id alone.
            (Some(cursor), _) => {
                holders.filter(seek(column(R::UserId), Expr::val(cursor.id.as_str())))
            }
        };
        let holders = if self.by_creation {
            holders.order_by(column(R::UserCreatedAt), direction(ascending))
        } else {
            holders
        };
        holders.order_by(column(R::UserId), direction(ascending))
    }
}

/// How PostgreSQL plans the statements of a page of `query` (see `store::snapshot::Plans`):
/// once for all values where a conjunct finds the page's users by an index whatever its value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Planning {
    /// For each execution's values: the plan depends on them (how many match, which index).
    PerValue,
    /// Once for all values: a conjunct compares a column that is nearly unique per user (an
    /// id, an email, a phone number, a username) with a value, whose index finds its users.
    Generic,
    /// Once for all values while the matches are few: a conjunct is a prefix of an indexed
    /// column, which its range on that index finds (see [`prefix_range`]). With more than
    /// [`FEW_MATCHES`], the page walks the index of its order instead, which only a plan for
    /// the value can weigh against the range: planned per value again from there.
    GenericWhileFew,
}

/// See [`Planning`].
pub fn planning(query: Option<&Query>) -> Planning {
    let mut conjuncts = Vec::new();
    if let Some(query) = query {
        conjuncts_of(query, &mut conjuncts);
    }
    let leaves: Vec<(&TextMatch, bool)> = conjuncts
        .iter()
        .filter_map(|conjunct| match conjunct {
            Query::Filter(filter) => indexed_text(filter),
            _ => None,
        })
        .collect();
    if leaves.iter().any(|(text, _)| text.op == TextOp::Equals) {
        Planning::Generic
    } else if leaves
        .iter()
        .any(|(text, prefix)| *prefix && text.op == TextOp::StartsWith)
    {
        Planning::GenericWhileFew
    } else {
        Planning::PerValue
    }
}

/// Whether a SQLite page of `query` is planned the same whatever its total: no query, or an AND
/// of plain leaves (no OR or NOT, whose plans may walk the order past them; no role, whose
/// holders may be walked; no substring or pattern search, which the total decides to narrow by
/// the trigram tables; no regex, which runs under a bound of its own). Such a page can be read
/// with its total in one statement (see `reads::users`).
pub fn plans_without_total(query: Option<&Query>, backend: DbBackend) -> bool {
    fn plain(query: &Query) -> bool {
        match query {
            Query::And(queries) => queries.iter().all(plain),
            Query::Or(_) | Query::Not(_) => false,
            Query::Filter(Filter::Role(_)) => false,
            Query::Filter(filter) => filter
                .text()
                .is_none_or(|text| matches!(text.op, TextOp::Equals | TextOp::StartsWith)),
        }
    }
    backend == DbBackend::Sqlite && query.is_none_or(plain)
}

/// The text of a filter on a nearly unique column with B-tree indexes on it and on its folding,
/// and whether its prefix ranges use them (an id has no prefix search worth planning for).
fn indexed_text(filter: &Filter) -> Option<(&TextMatch, bool)> {
    match filter {
        Filter::UserId(text) => Some((text, false)),
        Filter::Email(text) | Filter::Phone(text) => Some((text, true)),
        Filter::Username { text, .. } => Some((text, true)),
        _ => None,
    }
}

/// The conjuncts of a query: its top-level ANDs flattened.
fn conjuncts_of<'q>(query: &'q Query, into: &mut Vec<&'q Query>) {
    match query {
        Query::And(queries) => queries.iter().for_each(|q| conjuncts_of(q, into)),
        other => into.push(other),
    }
}

/// A text property: the column compared exactly and the column holding its case folding.
struct TextColumn {
    exact: Expr,
    folded: Expr,
    nullable: bool,
    /// SQLite's trigram index over the folded column, if it has one.
    trigram: Option<TrigramIndex>,
    /// Whether PostgreSQL indexes the folded column's reversal (see [`suffix_narrowing`]).
    suffix_index: bool,
}

impl TextColumn {
    fn users(exact: user::Column, folded: user::Column, nullable: bool) -> Self {
        Self {
            exact: Expr::col((user::Entity, exact)),
            folded: Expr::col((user::Entity, folded)),
            nullable,
            trigram: None,
            suffix_index: false,
        }
    }

    /// Ids are generated lower-case, so the column is its own folding.
    fn id(column: user::Column) -> Self {
        Self::users(column, column, false)
    }

    /// The substring indexes of a searchable text column: SQLite's trigram table, and
    /// PostgreSQL's index of the reversal (its trigram index needs nothing in the SQL).
    fn with_substring_indexes(self, trigram: TrigramIndex) -> Self {
        Self {
            trigram: Some(trigram),
            suffix_index: true,
            ..self
        }
    }
}

/// An FTS5 trigram table of migration 10 (SQLite only) and the column of it that indexes one
/// folded text column. Its rowids are keys of a key table (`key INTEGER PRIMARY KEY,
/// source_id`), which maps them to the ids of the source rows.
#[derive(Clone, Copy)]
struct TrigramIndex {
    fts: &'static str,
    column: &'static str,
    keys: &'static str,
    /// The id of a source row, as the outer query sees it (`users.id`, `usernames.id`).
    source_id: (&'static str, &'static str),
}

impl TrigramIndex {
    const fn users(column: &'static str) -> Self {
        Self {
            fts: "users_trigram",
            column,
            keys: "users_trigram_keys",
            source_id: ("users", "id"),
        }
    }

    const USERNAMES: Self = Self {
        fts: "usernames_trigram",
        column: "username",
        keys: "usernames_trigram_keys",
        source_id: ("usernames", "id"),
    };
}

fn filter_expr(filter: &Filter, target: Target) -> Expr {
    use user::Column as C;
    let text = |column: TextColumn, text: &TextMatch| text_expr(column, text, target);
    match filter {
        Filter::UserId(value) => text(TextColumn::id(C::Id), value),
        Filter::OrganizationId(value) => text(TextColumn::id(C::OrganizationId), value),
        Filter::Email(value) => text(
            TextColumn::users(C::Email, C::EmailLower, true)
                .with_substring_indexes(TrigramIndex::users("email")),
            value,
        ),
        Filter::Phone(value) => text(
            TextColumn::users(C::Phone, C::PhoneLower, true)
                .with_substring_indexes(TrigramIndex::users("phone")),
            value,
        ),
        Filter::Name(value) => text(
            TextColumn::users(C::Name, C::NameLower, true)
                .with_substring_indexes(TrigramIndex::users("name")),
            value,
        ),
        Filter::SchemaType(value) => text(
            TextColumn::users(C::SchemaType, C::SchemaTypeLower, false),
            value,
        ),
        Filter::SchemaId(id) => Expr::col((user::Entity, C::SchemaId)).eq(id.as_str()),
        Filter::State(state) => Expr::col((user::Entity, C::State)).eq(state.number()),
        Filter::Username {
            text,
            organization_specific,
        } => username_expr(text, *organization_specific, target),
        Filter::Role(role_id) => {
            use role_assignment::Column as R;
            Expr::col((user::Entity, C::Id)).in_subquery(
                Sql::select()
                    .column((role_assignment::Entity, R::UserId))
                    .from(role_assignment::Entity)
                    .and_where(Expr::col((role_assignment::Entity, R::RoleId)).eq(role_id.as_str()))
                    .to_owned(),
            )
        }
        Filter::CreatedAt(comparison) => compare(C::CreatedAt, false, comparison),
        Filter::ChangedAt(comparison) => compare(C::ChangedAt, false, comparison),
        Filter::LastLogin(comparison) => compare(C::LastLogin, true, comparison),
        // Bound values, like everything else: `? = ?` with 1 and 0.
        Filter::Nothing => Expr::val(1).eq(0),
    }
}

/// A timestamp column (integer microseconds) compared with a bound value; a NULL never
/// matches, so the leaf stays two-valued.
fn compare(column: user::Column, nullable: bool, comparison: &Comparison) -> Expr {
    let col = Expr::col((user::Entity, column));
    let value = comparison.value.micros();
    let test = match comparison.op {
        CompareOp::Eq => col.clone().eq(value),
        CompareOp::Ne => col.clone().ne(value),
        CompareOp::Gt => col.clone().gt(value),
        CompareOp::Ge => col.clone().gte(value),
        CompareOp::Lt => col.clone().lt(value),
    };
    if nullable {
        col.is_not_null().and(test)
    } else {
        test
    }
}

/// Organizations whose name matches `text`, compared as users' text properties are.
pub fn organization_name(text: &TextMatch) -> Condition {
    use organization::Column as O;
    let column = TextColumn {
        exact: Expr::col((organization::Entity, O::Name)),
        folded: Expr::col((organization::Entity, O::NameLower)),
        nullable: false,
        trigram: None,
        suffix_index: false,
    };
    // Organizations are few: no trigram index, so the backend does not matter.
    let target = Target {
        backend: DbBackend::Postgres,
        narrow: false,
        walk_order: false,
        planned_once: false,
    };
    Condition::all().add(text_expr(column, text, target))
}

/// `id IN (users with a matching username)`: the database seeks the username index first
/// instead of probing every user, and one-to-many rows never multiply users in a count.
/// `user_id` is never NULL, so the membership test is two-valued and NOT stays a complement.
fn username_expr(text: &TextMatch, organization_specific: Option<bool>, target: Target) -> Expr {
    use username::Column as U;
    let column = TextColumn {
        exact: Expr::col((username::Entity, U::Username)),
        folded: Expr::col((username::Entity, U::UsernameLower)),
        nullable: false,
        trigram: Some(TrigramIndex::USERNAMES),
        suffix_index: true,
    };
    let mut names = Sql::select();
    names
        .column((username::Entity, U::UserId))
        .from(username::Entity)
        .and_where(text_expr(column, text, target));
    if let Some(specific) = organization_specific {
        names.and_where(U::IsOrganizationSpecific.eq(specific));
    }
    Expr::col((user::Entity, user::Column::Id)).in_subquery(names.to_owned())
}

fn text_expr(column: TextColumn, text: &TextMatch, target: Target) -> Expr {
    let prefix_as_range = target.planned_once && target.backend == DbBackend::Postgres;
    let narrowing = trigram_narrowing(&column, text, target)
        .or_else(|| suffix_narrowing(&column, text, target));
    let (target, value) = if text.ignore_case {
        (column.folded.clone(), fold_case(&text.value))
    } else {
        (column.exact.clone(), text.value.clone())
    };
    let comparison = match text.op {
        TextOp::Equals => target.eq(value),
        // The caller's pattern, wildcards live; the escape character is explicit because
        // SQLite has no default one.
        TextOp::Like => target.like(LikeExpr::new(value).escape(LIKE_ESCAPE)),
        // `regexp(pattern, value)`: sqlx's function on SQLite, migration 3's on PostgreSQL.
        TextOp::Regex => Func::cust("regexp").arg(value).arg(target).into(),
        // `starts_with` as the range's test: a LIKE beside it would have a generic plan also
        // consider the trigram index, which takes milliseconds to intersect the value's
        // trigrams (in a custom plan PostgreSQL makes the range from the LIKE itself).
        TextOp::StartsWith if prefix_as_range => prefix_range(&target, &value).and(
            Func::cust("starts_with")
                .arg(target.clone())
                .arg(value.clone()),
        ),
        op => target.like(LikeExpr::new(like_pattern(op, &value)).escape(LIKE_ESCAPE)),
    };
    // The index only narrows: the LIKE still decides, so the answer is the LIKE's answer.
    let comparison = match narrowing {
        Some(narrowing) => narrowing.and(comparison),
        None => comparison,
    };
    if column.nullable {
        // NULL would make the comparison unknown, and NOT(unknown) is unknown: say false.
        column.exact.is_not_null().and(comparison)
    } else {
        comparison
    }
}

/// Trigrams are three characters: a shorter value has none to look up.
const TRIGRAM: usize = 3;

/// On SQLite, `source id IN (the rows whose trigram index holds the value)` for a substring
/// search (contains, ends-with, or a caller's LIKE pattern starting with a wildcard, by its
/// longest literal run) of a column with a trigram index: what lets SQLite find the few
/// matching rows instead of testing the LIKE on every row. The index holds the folded
/// column, so it serves ignore-case searches with the folded value, and case-sensitive ones
/// too as long as folding the value alone gives what folding it inside a longer text gives:
/// Rust's lower-casing is per character except for `Σ`, whose lower case depends on what
/// follows it (`ς` at the end of a word), so a value with `Σ` keeps the plain LIKE. Starts-with
/// is left to the B-tree indexes, which answer a prefix directly.
///
/// The value goes to FTS5 as a phrase (nothing in it is query syntax), double quotes doubled,
/// bound as a parameter: the rarest of its windows (see [`rarest_phrase`]), or the whole
/// value when every window is common.
fn trigram_narrowing(column: &TextColumn, text: &TextMatch, target: Target) -> Option<Expr> {
    let index = column.trigram?;
    if target.backend != DbBackend::Sqlite || !target.narrow {
        return None;
    }
    let literal = match text.op {
        TextOp::Contains | TextOp::EndsWith => text.value.clone(),
        TextOp::Like => like_infix(&text.value)?,
        TextOp::Equals | TextOp::StartsWith | TextOp::Regex => return None,
    };
    if !text.ignore_case && literal.contains('Σ') {
        return None;
    }
    let folded = fold_case(&literal);
    if folded.chars().count() < TRIGRAM {
        return None;
    }
    let fts = Alias::new(index.fts);
    let keys = Alias::new(index.keys);
    let matching_keys = Sql::select()
        .column((fts.clone(), Alias::new("rowid")))
        .from(fts.clone())
        .and_where(
            Expr::col((fts, Alias::new(index.column)))
                .binary(BinOper::Custom("MATCH"), rarest_phrase(&index, &folded)),
        )
        .to_owned();
    let matching_ids = Sql::select()
        .column((keys.clone(), Alias::new("source_id")))
        .from(keys.clone())
        .and_where(Expr::col((keys, Alias::new("key"))).in_subquery(matching_keys))
        .to_owned();
    let (table, id) = index.source_id;
    Some(Expr::col((Alias::new(table), Alias::new(id))).in_subquery(matching_ids))
}

/// Characters of a window of the value that [`rarest_phrase`] probes: two trigrams in a row,
/// which a row holds far less often than either alone (`999@` beside `999` and `99@`).
const WINDOW: usize = 4;
/// A window found in fewer rows than this narrows on its own.
const RARE_WINDOW: u64 = 1000;
/// Fewest windows worth probing (values of nine characters or more): a shorter value's
/// phrase is a few trigrams, which FTS5 finds about as fast as the probes run (at a million
/// users `smith99` took 2.3 ms as a phrase, 2.9 ms by its rarest window).
const MIN_WINDOWS: usize = 6;
/// Most windows of one value probed by [`rarest_phrase`] (a probe of a common window stops
/// after a thousand rows, well under a millisecond).
const MAX_WINDOWS: usize = 16;

/// What to look up in the trigram table for `folded`. FTS5 answers a phrase by walking the
/// posting lists of all its trigrams together, so `999@globex.example` costs about what its
/// most common trigrams (`glo`, `.ex`, in a fifth of all rows) cost: 44 ms at a million users,
/// while the rows holding `999@` are a thousand and take 12 ms to find and check. The
/// statement therefore first counts, for windows of [`WINDOW`] characters of the value, the
/// rows holding each (at most [`RARE_WINDOW`]: FTS5 reads posting lists lazily, so a common
/// window stops early), then looks up the rarest window if it is rare, the whole value
/// otherwise. A window of the value is in every row that holds the value, so the narrowing
/// keeps every match; the LIKE beside it decides.
fn rarest_phrase(index: &TrigramIndex, folded: &str) -> Expr {
    let whole = fts5_phrase(folded);
    let chars: Vec<char> = folded.chars().collect();
    // Every window (a rare one can sit anywhere: `2345` in `12345@globex.example`), or
    // MAX_WINDOWS of them spread evenly from the first to the last; each text once.
    let positions = (chars.len() + 1).saturating_sub(WINDOW);
    if positions < MIN_WINDOWS {
        return Expr::val(whole);
    }
    let starts: Vec<usize> = if positions <= MAX_WINDOWS {
        (0..positions).collect()
    } else {
        (0..MAX_WINDOWS)
            .map(|i| i * (positions - 1) / (MAX_WINDOWS - 1))
            .collect()
    };
    let mut seen = std::collections::HashSet::new();
    let windows: Vec<String> = starts
        .into_iter()
        .map(|start| chars[start..start + WINDOW].iter().collect())
        .filter(|window: &String| seen.insert(window.clone()))
        .collect();
    if windows.len() < 2 {
        return Expr::val(whole);
    }
    let fts = Alias::new(index.fts);
    let column = Alias::new(index.column);
    let probe = |window: &str| {
        let phrase = fts5_phrase(window);
        let holding = Sql::select()
            .expr(Expr::val(1))
            .from(fts.clone())
            .and_where(
                Expr::col((fts.clone(), column.clone()))
                    .binary(BinOper::Custom("MATCH"), phrase.clone()),
            )
            .limit(RARE_WINDOW)
            .to_owned();
        let hits = Sql::select()
            .expr(Expr::col(Asterisk).count())
            .from_subquery(holding, Alias::new("holding"))
            .to_owned();
        Sql::select()
            .expr_as(Expr::val(phrase), Alias::new("phrase"))
            .expr_as(scalar(hits), Alias::new("hits"))
            .to_owned()
    };
    let mut probes = probe(&windows[0]);
    for window in &windows[1..] {
        probes.union(UnionType::All, probe(window));
    }
    let choice = Sql::select()
        .expr(
            Expr::case(
                Expr::col(Alias::new("hits")).lt(RARE_WINDOW),
                Expr::col(Alias::new("phrase")),
            )
            .finally(Expr::val(whole)),
        )
        .from_subquery(probes, Alias::new("probes"))
        .order_by(Alias::new("hits"), Order::Asc)
        .limit(1)
        .to_owned();
    scalar(choice)
}

/// `text` as one FTS5 phrase: in double quotes, its own double quotes doubled.
fn fts5_phrase(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

/// A SELECT of one value, as an expression.
fn scalar(select: SelectStatement) -> Expr {
    Expr::SubQuery(None, Box::new(select.into()))
}

/// On PostgreSQL, `reverse(folded column) LIKE 'reversed value%'` for an ends-with search of a
/// column whose reversal migration 12 indexes: a prefix range of that B-tree, where the trigram
/// index would intersect the posting lists of every trigram of the value, and the trigrams of
/// the suffixes people search by (a mail domain, a number's last digits) are in nearly every
/// row. Only where matches are few (`target.narrow`): with many, the page's order walks its
/// own index. Folded like the trigram narrowing, with the same exception for `Σ`, so it
/// serves case-sensitive searches too; the value is reversed by code point, as `reverse()`
/// does, and escaped after reversing.
fn suffix_narrowing(column: &TextColumn, text: &TextMatch, target: Target) -> Option<Expr> {
    if !column.suffix_index
        || target.backend != DbBackend::Postgres
        || !target.narrow
        || text.op != TextOp::EndsWith
        || (!text.ignore_case && text.value.contains('Σ'))
    {
        return None;
    }
    let reversed: String = fold_case(&text.value).chars().rev().collect();
    let pattern = like_pattern(TextOp::StartsWith, &reversed);
    Some(
        Expr::from(Func::cust("reverse").arg(column.folded.clone()))
            .like(LikeExpr::new(pattern).escape(LIKE_ESCAPE)),
    )
}

/// The texts starting with `prefix` as a range of the column: `>= prefix` and `<` the first
/// text after every text starting with it (the prefix with its last character raised by one
/// code point, trailing U+10FFFF dropped; no upper bound when nothing is left). The text
/// columns are `COLLATE "C"` (`columns.rs`), which orders by code point, so the range holds
/// exactly those texts; the test beside it still decides. PostgreSQL makes such a range from a
/// LIKE prefix itself, but only when it plans for the value; a plan made once for all values
/// (see [`Planning`]) sees a parameter, and only the range lets it seek the index.
fn prefix_range(column: &Expr, prefix: &str) -> Expr {
    let from = column.clone().gte(prefix);
    match prefix_successor(prefix) {
        Some(until) => from.and(column.clone().lt(until)),
        None => from,
    }
}

/// The smallest text greater than every text starting with `prefix`, if there is one.
fn prefix_successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // The next scalar value: the surrogates are not characters.
        let next = match u32::from(last) + 1 {
            0xD800 => Some('\u{E000}'),
            code => char::from_u32(code),
        };
        if let Some(next) = next {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// The longest literal run of a caller's LIKE pattern that starts with a wildcard (Logto's
/// searches, `%ann%`): every text the pattern matches contains that run. A pattern with a
/// literal start is the B-trees' (a prefix range), like starts-with.
fn like_infix(pattern: &str) -> Option<String> {
    if !pattern.starts_with(['%', '_']) {
        return None;
    }
    let mut runs = vec![String::new()];
    let mut chars = pattern.chars();
    while let Some(c) = chars.next() {
        match c {
            '%' | '_' => runs.push(String::new()),
            // An escape character at the very end matches nothing literal: it ends the run.
            LIKE_ESCAPE => match chars.next() {
                Some(escaped) => runs.last_mut()?.push(escaped),
                None => runs.push(String::new()),
            },
            c => runs.last_mut()?.push(c),
        }
    }
    runs.into_iter().max_by_key(|run| run.chars().count())
}

/// The LIKE pattern that matches `value` literally at the operation's position.
fn like_pattern(op: TextOp, value: &str) -> String {
    let mut escaped = String::with_capacity(value.len() + 2);
    for c in value.chars() {
        if matches!(c, '%' | '_' | LIKE_ESCAPE) {
            escaped.push(LIKE_ESCAPE);
        }
        escaped.push(c);
    }
    match op {
        TextOp::Equals | TextOp::Like | TextOp::Regex => escaped,
        TextOp::StartsWith => format!("{escaped}%"),
        TextOp::EndsWith => format!("%{escaped}"),
        TextOp::Contains => format!("%{escaped}%"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserState;
    use sea_orm::{DbBackend, QueryTrait};

    fn sql(query: &Query, backend: DbBackend) -> String {
        select_users(
            Some(query),
            backend,
            SortField::Email,
            false,
            Matches::total(0),
        )
        .build(backend)
        .to_string()
    }

    #[test]
    fn like_patterns_escape_wildcards_and_the_escape_character() {
        assert_eq!(like_pattern(TextOp::StartsWith, r"50%_a\b"), r"50\%\_a\\b%");
        assert_eq!(like_pattern(TextOp::Contains, "x"), "%x%");
        assert_eq!(like_pattern(TextOp::EndsWith, "x"), "%x");
    }

    #[test]
    fn ignore_case_compares_the_folded_column_with_the_folded_value() {
        let query = Query::Filter(Filter::Email(TextMatch::new(
            TextOp::StartsWith,
            true,
            "ÉMI",
        )));
        let sql = sql(&query, DbBackend::Postgres);
        assert!(
            sql.contains(r#""users"."email_lower" LIKE 'émi%' ESCAPE"#),
            "{sql}"
        );
        assert!(sql.contains(r#""users"."email" IS NOT NULL"#), "{sql}");
    }

    #[test]
    fn not_wraps_a_two_valued_leaf() {
        let query = Query::Not(Box::new(Query::Filter(Filter::Email(TextMatch::equals(
            "a@b",
        )))));
        let sql = sql(&query, DbBackend::Sqlite);
        assert!(
            sql.contains(r#"NOT ("users"."email" IS NOT NULL AND "users"."email" = 'a@b')"#),
            "{sql}"
        );
    }

    #[test]
    fn usernames_are_matched_through_a_subquery_on_the_username_index() {
        let query = Query::Or(vec![
            Query::Filter(Filter::Username {
                text: TextMatch::new(TextOp::Equals, true, "Gigi"),
                organization_specific: Some(true),
            }),
            Query::Filter(Filter::State(UserState::Locked)),
        ]);
        let sql = sql(&query, DbBackend::Postgres);
        assert!(
            sql.contains(r#""users"."id" IN (SELECT "usernames"."user_id" FROM "usernames""#),
            "{sql}"
        );
        assert!(
            sql.contains(r#""usernames"."username_lower" = 'gigi'"#),
            "{sql}"
        );
        assert!(
            sql.contains(r#""is_organization_specific" = TRUE"#),
            "{sql}"
        );
        assert!(sql.contains(r#" OR "users"."state" = 4"#), "{sql}");
    }

    #[test]
    fn orders_on_required_columns_match_their_index() {
        let sql = select_users(
            None,
            DbBackend::Postgres,
            SortField::CreationDate,
            false,
            Matches::total(0),
        )
        .build(DbBackend::Postgres)
        .to_string();
        assert!(
            sql.ends_with(r#"ORDER BY "users"."created_at" DESC, "users"."id" DESC"#),
            "{sql}"
        );
    }

    #[test]
    fn like_patterns_keep_their_wildcards_and_regexes_call_regexp() {
        let like = Query::Filter(Filter::Name(TextMatch::new(TextOp::Like, true, "A%_\\%")));
        let text = sql(&like, DbBackend::Sqlite);
        assert!(
            text.contains(r#""users"."name_lower" LIKE 'a%_\%' ESCAPE '\'"#),
            "{text}"
        );
        let regex = Query::Not(Box::new(Query::Filter(Filter::Email(TextMatch::new(
            TextOp::Regex,
            false,
            "(?s)^a",
        )))));
        let text = sql(&regex, DbBackend::Postgres);
        assert!(
            text.contains(
                r#"NOT ("users"."email" IS NOT NULL AND regexp('(?s)^a', "users"."email"))"#
            ),
            "{text}"
        );
    }

    #[test]
    fn timestamp_comparisons_are_two_valued_and_nothing_is_false() {
        use crate::domain::Timestamp;
        use crate::query::{CompareOp, Comparison};
        let at = |op| Comparison {
            op,
            value: Timestamp::from_micros(42),
        };
        let query = Query::Or(vec![
            Query::Filter(Filter::CreatedAt(at(CompareOp::Ge))),
            Query::Not(Box::new(Query::Filter(Filter::LastLogin(at(
                CompareOp::Ne,
            ))))),
            Query::Filter(Filter::ChangedAt(at(CompareOp::Lt))),
            Query::Filter(Filter::Nothing),
        ]);
        let text = sql(&query, DbBackend::Sqlite);
        assert!(text.contains(r#""users"."created_at" >= 42"#), "{text}");
        assert!(
            text.contains(
                r#"NOT ("users"."last_login" IS NOT NULL AND "users"."last_login" <> 42)"#
            ),
            "{text}"
        );
        assert!(text.contains(r#""users"."changed_at" < 42"#), "{text}");
        assert!(text.contains("1 = 0"), "{text}");
    }

    #[test]
    fn every_order_ends_with_the_id_and_puts_missing_values_last() {
        let sql = sql(
            &Query::Filter(Filter::SchemaId("s".into())),
            DbBackend::Sqlite,
        );
        assert!(
            sql.ends_with(r#"ORDER BY "users"."email_lower" DESC NULLS LAST, "users"."id" DESC"#),
            "{sql}"
        );
    }

    #[test]
    fn seeks_compare_the_order_key_as_a_row_value_in_the_order_of_the_first_page() {
        let cursor = |value| Cursor {
            value,
            id: "u1".into(),
        };
        let sqls = |sort, ascending, value| -> Vec<String> {
            select_users_after(
                None,
                DbBackend::Postgres,
                Matches::total(0),
                sort,
                ascending,
                &cursor(value),
            )
            .into_iter()
            .map(|select| select.build(DbBackend::Postgres).to_string())
            .collect()
        };
        let [page] = &sqls(SortField::CreationDate, false, SortValue::Int(42))[..] else {
            panic!("one select for a required column");
        };
        assert!(
            page.ends_with(
                r#"WHERE ("users"."created_at", "users"."id") < (42, 'u1') ORDER BY "users"."created_at" DESC, "users"."id" DESC"#
            ),
            "{page}"
        );
        let [page] = &sqls(SortField::Id, true, SortValue::None)[..] else {
            panic!("one select for the id");
        };
        assert!(
            page.ends_with(r#"WHERE "users"."id" > 'u1' ORDER BY "users"."id" ASC"#),
            "{page}"
        );
        // A nullable column: the rest of the valued rows, then the NULL group by id.
        let [valued, nulls] = &sqls(SortField::Email, true, SortValue::Text("b@c".into()))[..]
        else {
            panic!("two selects for a valued key of a nullable column");
        };
        assert!(
            valued.ends_with(
                r#"WHERE "users"."email_lower" IS NOT NULL AND ("users"."email_lower", "users"."id") > ('b@c', 'u1') ORDER BY "users"."email_lower" ASC, "users"."id" ASC"#
            ),
            "{valued}"
        );
        assert!(
            nulls.ends_with(
                r#"WHERE "users"."email_lower" IS NULL ORDER BY "users"."email_lower" ASC, "users"."id" ASC"#
            ),
            "{nulls}"
        );
        let [nulls] = &sqls(SortField::Phone, false, SortValue::Null)[..] else {
            panic!("one select inside the NULL group");
        };
        assert!(
            nulls.ends_with(
                r#"WHERE "users"."phone" IS NULL AND "users"."id" < 'u1' ORDER BY "users"."phone" DESC, "users"."id" DESC"#
            ),
            "{nulls}"
        );
    }

    fn leaf(op: TextOp, ignore_case: bool, value: &str) -> Query {
        Query::Filter(Filter::Email(TextMatch::new(op, ignore_case, value)))
    }

    #[test]
    fn a_prefix_planned_once_is_a_range_of_the_column_on_postgres() {
        let planned = |query: &Query, backend, once| {
            select_users(
                Some(query),
                backend,
                SortField::CreationDate,
                false,
                Matches::total(0).planned_once(once),
            )
            .build(backend)
            .to_string()
        };
        let starts = planned(
            &leaf(TextOp::StartsWith, true, "Ada_"),
            DbBackend::Postgres,
            true,
        );
        assert!(
            starts.contains(r#""users"."email_lower" >= 'ada_' AND "users"."email_lower" < 'ada`' AND starts_with("users"."email_lower", 'ada_')"#)
                && !starts.contains("LIKE"),
            "{starts}"
        );
        let count = filter_users(
            Some(&leaf(TextOp::StartsWith, false, "Ada")),
            DbBackend::Postgres,
            true,
        )
        .build(DbBackend::Postgres)
        .to_string();
        assert!(
            count.contains(r#"starts_with("users"."email", 'Ada')"#),
            "{count}"
        );
        // Planned for its value, PostgreSQL makes the range from the LIKE, with the estimate
        // of the prefix that the page's plan needs.
        let per_value = planned(
            &leaf(TextOp::StartsWith, true, "ada"),
            DbBackend::Postgres,
            false,
        );
        assert!(
            per_value.contains("LIKE 'ada%'") && !per_value.contains(">="),
            "{per_value}"
        );
        // SQLite turns the LIKE into the range itself (`case_sensitive_like`), for every plan.
        let sqlite = planned(
            &leaf(TextOp::StartsWith, true, "ada"),
            DbBackend::Sqlite,
            true,
        );
        assert!(!sqlite.contains(">="), "{sqlite}");
        assert_eq!(prefix_successor("ab"), Some("ac".into()));
        assert_eq!(prefix_successor("a\u{D7FF}"), Some("a\u{E000}".into()));
        assert_eq!(prefix_successor("a\u{10FFFF}"), Some("b".into()));
        assert_eq!(prefix_successor("\u{10FFFF}\u{10FFFF}"), None);
        assert_eq!(prefix_successor(""), None);
        // Every text starting with the prefix is in the range, the next one is not.
        for prefix in ["a", "z\u{10FFFF}", "\u{D7FF}", "é"] {
            let until = prefix_successor(prefix).expect("a successor");
            for text in [
                prefix.to_owned(),
                format!("{prefix}\u{10FFFF}\u{10FFFF}"),
                format!("{prefix}a"),
            ] {
                assert!(
                    text.as_str() >= prefix && text < until,
                    "{prefix:?} {text:?}"
                );
            }
            assert!(!until.starts_with(prefix), "{prefix:?}");
        }
    }

    #[test]
    fn a_page_plans_once_for_all_values_where_an_index_finds_its_users_whatever_the_value() {
        let state = Query::Filter(Filter::State(UserState::Locked));
        let username = |op| {
            Query::Filter(Filter::Username {
                text: TextMatch::new(op, true, "ada"),
                organization_specific: None,
            })
        };
        for (query, planned) in [
            (None, Planning::PerValue),
            (Some(state.clone()), Planning::PerValue),
            (Some(leaf(TextOp::Equals, true, "a@b.c")), Planning::Generic),
            (
                Some(Query::And(vec![state.clone(), username(TextOp::Equals)])),
                Planning::Generic,
            ),
            (
                Some(leaf(TextOp::StartsWith, true, "ada")),
                Planning::GenericWhileFew,
            ),
            (
                Some(username(TextOp::StartsWith)),
                Planning::GenericWhileFew,
            ),
            (
                Some(leaf(TextOp::Contains, true, "ada")),
                Planning::PerValue,
            ),
            // Not a conjunct: an OR's plan depends on every branch.
            (
                Some(Query::Or(vec![
                    state.clone(),
                    leaf(TextOp::Equals, false, "a@b.c"),
                ])),
                Planning::PerValue,
            ),
            (
                Some(Query::Not(Box::new(leaf(TextOp::Equals, false, "a@b.c")))),
                Planning::PerValue,
            ),
            (
                Some(Query::Filter(Filter::Name(TextMatch::new(
                    TextOp::Equals,
                    true,
                    "Ada",
                )))),
                Planning::PerValue,
            ),
        ] {
            assert_eq!(planning(query.as_ref()), planned, "{query:?}");
        }
    }

    #[test]
    fn a_sqlite_page_of_plain_leaves_is_planned_without_its_total() {
        let email = leaf(TextOp::Equals, true, "a@b.c");
        let state = Query::Filter(Filter::State(UserState::Locked));
        let role = Query::Filter(Filter::Role("r1".into()));
        for (query, backend, alone) in [
            (Some(email.clone()), DbBackend::Sqlite, true),
            (
                Some(Query::And(vec![state.clone(), email.clone()])),
                DbBackend::Sqlite,
                true,
            ),
            (
                Some(Query::And(vec![
                    email.clone(),
                    leaf(TextOp::StartsWith, false, "a"),
                ])),
                DbBackend::Sqlite,
                true,
            ),
            (Some(email.clone()), DbBackend::Postgres, false),
            (None, DbBackend::Sqlite, true),
            (Some(state.clone()), DbBackend::Sqlite, true),
            (
                Some(leaf(TextOp::StartsWith, true, "ada")),
                DbBackend::Sqlite,
                true,
            ),
            // The total decides these plans: a trigram narrowing, a walk, a role's holders.
            (
                Some(Query::And(vec![
                    email.clone(),
                    leaf(TextOp::Contains, true, "abc"),
                ])),
                DbBackend::Sqlite,
                false,
            ),
            (
                Some(Query::And(vec![
                    email.clone(),
                    Query::Or(vec![state.clone(), email.clone()]),
                ])),
                DbBackend::Sqlite,
                false,
            ),
            (
                Some(Query::And(vec![email.clone(), role])),
                DbBackend::Sqlite,
                false,
            ),
            (
                Some(Query::And(vec![email.clone(), Query::Not(Box::new(state))])),
                DbBackend::Sqlite,
                false,
            ),
            (
                Some(Query::And(vec![email, leaf(TextOp::Regex, false, "a")])),
                DbBackend::Sqlite,
                false,
            ),
        ] {
            assert_eq!(
                plans_without_total(query.as_ref(), backend),
                alone,
                "{query:?} {backend:?}"
            );
        }
    }

    #[test]
    fn sqlite_narrows_substring_searches_by_the_trigram_index_and_keeps_the_like() {
        let text = sql(&leaf(TextOp::Contains, true, r#"A"B%c"#), DbBackend::Sqlite);
        assert!(
            text.contains(
                r#""users"."id" IN (SELECT "users_trigram_keys"."source_id" FROM "users_trigram_keys" WHERE "users_trigram_keys"."key" IN (SELECT "users_trigram"."rowid" FROM "users_trigram" WHERE "users_trigram"."email" MATCH '"a""b%c"'))"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#" AND "users"."email_lower" LIKE '%a"b\%c%' ESCAPE"#),
            "{text}"
        );
        let ends = sql(&leaf(TextOp::EndsWith, false, "Xyz"), DbBackend::Sqlite);
        assert!(ends.contains(r#"MATCH '"xyz"'"#), "{ends}");
        assert!(ends.contains(r#""users"."email" LIKE '%Xyz'"#), "{ends}");
        let username = Query::Filter(Filter::Username {
            text: TextMatch::new(TextOp::Contains, true, "gigi"),
            organization_specific: None,
        });
        let names = sql(&username, DbBackend::Sqlite);
        assert!(
            names.contains(
                r#"WHERE "usernames"."id" IN (SELECT "usernames_trigram_keys"."source_id""#
            ) && names.contains(r#""usernames_trigram"."username" MATCH '"gigi"'"#),
            "{names}"
        );
    }

    #[test]
    fn a_long_value_looks_up_its_rarest_window_when_one_is_rare() {
        let text = sql(
            &leaf(TextOp::EndsWith, true, "999@Globex.example"),
            DbBackend::Sqlite,
        );
        let probe = |phrase: &str| {
            format!(
                r#"SELECT '{phrase}' AS "phrase", (SELECT COUNT(*) FROM (SELECT 1 FROM "users_trigram" WHERE "users_trigram"."email" MATCH '{phrase}' LIMIT 1000) AS "holding") AS "hits""#
            )
        };
        // Every window of four characters, overlapping.
        let value = "999@globex.example";
        for start in 0..value.len() - 3 {
            let phrase = format!("\"{}\"", &value[start..start + 4]);
            assert!(text.contains(&probe(&phrase)), "{phrase}: {text}");
        }
        assert_eq!(text.matches(r#"AS "hits""#).count(), 15, "{text}");
        assert!(
            text.contains(r#""users_trigram"."email" MATCH (SELECT (CASE WHEN ("hits" < 1000) THEN "phrase" ELSE '"999@globex.example"' END) FROM ("#),
            "{text}"
        );
        assert!(
            text.contains(r#") AS "probes" ORDER BY "hits" ASC LIMIT 1)"#),
            "{text}"
        );
        assert!(
            text.contains(r#""users"."email_lower" LIKE '%999@globex.example' ESCAPE"#),
            "{text}"
        );
        // A long value probes sixteen windows, its first and its last among them; a window
        // that repeats is probed once.
        let value = "0123456789abcdefghijklmnopqrstuvwxyz";
        let long = sql(&leaf(TextOp::Contains, true, value), DbBackend::Sqlite);
        assert_eq!(long.matches(r#"AS "hits""#).count(), 16, "{long}");
        assert!(long.contains(&probe(r#""0123""#)), "{long}");
        assert!(long.contains(&probe(r#""wxyz""#)), "{long}");
        let repeating = sql(
            &leaf(TextOp::Contains, true, "abcabcabc"),
            DbBackend::Sqlite,
        );
        assert_eq!(repeating.matches(r#"AS "hits""#).count(), 3, "{repeating}");
        // Eight characters are five windows: the phrase of the whole value.
        let short = sql(&leaf(TextOp::Contains, true, "abcdefgh"), DbBackend::Sqlite);
        assert!(
            !short.contains("hits") && short.contains(r#"MATCH '"abcdefgh"'"#),
            "{short}"
        );
    }

    #[test]
    fn the_trigram_index_is_left_out_where_it_cannot_answer() {
        let unnarrowed = [
            // PostgreSQL's pg_trgm serves the LIKE itself.
            (leaf(TextOp::Contains, true, "abcd"), DbBackend::Postgres),
            // Fewer than three characters have no trigram, counted after folding.
            (leaf(TextOp::Contains, true, "ab"), DbBackend::Sqlite),
            (leaf(TextOp::EndsWith, true, "é"), DbBackend::Sqlite),
            // Prefixes are the B-trees'.
            (leaf(TextOp::StartsWith, true, "abcd"), DbBackend::Sqlite),
            (leaf(TextOp::Equals, true, "abcd"), DbBackend::Sqlite),
            // Σ folds by what follows it: the folded index could miss a case-sensitive match.
            (leaf(TextOp::Contains, false, "ΟΔΟΣ"), DbBackend::Sqlite),
            (
                Query::Filter(Filter::SchemaType(TextMatch::new(
                    TextOp::Contains,
                    true,
                    "abc",
                ))),
                DbBackend::Sqlite,
            ),
        ];
        for (query, backend) in unnarrowed {
            let text = sql(&query, backend);
            assert!(!text.contains("MATCH"), "{text}");
        }
        // Ignore case, Σ is fine: the LIKE compares folded texts too.
        let sigma = sql(&leaf(TextOp::Contains, true, "ΟΔΟΣ"), DbBackend::Sqlite);
        assert!(sigma.contains(r#"MATCH '"οδος"'"#), "{sigma}");
    }

    #[test]
    fn ends_with_is_a_prefix_of_the_reversal_on_postgres() {
        // Reversed by character, then escaped: the wildcards and the escape stay literal.
        let ends = sql(
            &leaf(TextOp::EndsWith, true, "Ünal%_\\@X.ch"),
            DbBackend::Postgres,
        );
        assert!(
            ends.contains(r#"reverse("users"."email_lower") LIKE E'hc.x@\\\\\\_\\%lanü%'"#)
                && ends.contains(r#""users"."email_lower" LIKE E'%ünal\\%\\_\\\\@x.ch'"#),
            "{ends}"
        );
        // Case-sensitive: narrowed by the folded reversal, decided by the exact LIKE.
        let exact = sql(&leaf(TextOp::EndsWith, false, "Xyz"), DbBackend::Postgres);
        assert!(
            exact.contains(r#"reverse("users"."email_lower") LIKE 'zyx%'"#)
                && exact.contains(r#""users"."email" LIKE '%Xyz'"#),
            "{exact}"
        );
        let username = Query::Filter(Filter::Username {
            text: TextMatch::new(TextOp::EndsWith, true, "Gigi"),
            organization_specific: None,
        });
        let names = sql(&username, DbBackend::Postgres);
        assert!(
            names.contains(r#"reverse("usernames"."username_lower") LIKE 'igig%'"#),
            "{names}"
        );
        let unnarrowed = [
            (leaf(TextOp::EndsWith, true, "xyz"), DbBackend::Sqlite),
            (leaf(TextOp::Contains, true, "xyz"), DbBackend::Postgres),
            (leaf(TextOp::EndsWith, false, "ΟΔΟΣ"), DbBackend::Postgres),
            (
                Query::Filter(Filter::SchemaType(TextMatch::new(
                    TextOp::EndsWith,
                    true,
                    "xyz",
                ))),
                DbBackend::Postgres,
            ),
        ];
        for (query, backend) in unnarrowed {
            let text = sql(&query, backend);
            assert!(!text.contains("reverse("), "{text}");
        }
        // Many matches: the page walks the index of its order, which the narrowing would not
        // serve.
        let many = select_users(
            Some(&leaf(TextOp::EndsWith, true, "xyz")),
            DbBackend::Postgres,
            SortField::CreationDate,
            false,
            Matches::total(FEW_MATCHES + 1),
        )
        .build(DbBackend::Postgres)
        .to_string();
        assert!(!many.contains("reverse("), "{many}");
    }

    #[test]
    fn sqlite_walks_the_order_past_an_or_only_where_matches_are_dense() {
        let or = Query::Or(vec![
            Query::Filter(Filter::State(UserState::Locked)),
            leaf(TextOp::StartsWith, true, "ada"),
        ]);
        let own = Query::Filter(Filter::OrganizationId(TextMatch::new(
            TextOp::Equals,
            false,
            "o1",
        )));
        let query = Query::And(vec![own, or.clone()]);
        let page = |query: &Query, backend, total, users| {
            let matches = Matches::walking(Some(query), backend, total, users, 101);
            select_users(
                Some(query),
                backend,
                SortField::CreationDate,
                false,
                matches,
            )
            .build(backend)
            .to_string()
        };
        // 40,000 of a million: about 2,500 rows walked for a page, against 40,000 sorted.
        let walked = page(&query, DbBackend::Sqlite, 40_000, 1_000_000);
        assert!(
            walked.contains(r#"WHERE "users"."organization_id" = 'o1' AND (+("users"."state" = 4 OR ("users"."email" IS NOT NULL AND "users"."email_lower" LIKE 'ada%' ESCAPE '\')))"#),
            "{walked}"
        );
        assert!(
            page(&or, DbBackend::Sqlite, 40_000, 1_000_000).contains(r#"+("users"."state" = 4 OR"#)
        );
        // 5,000 of a million: sorting them is cheaper than walking 20,000.
        for (query, backend, total) in [
            (&query, DbBackend::Sqlite, 5_000),
            (&query, DbBackend::Sqlite, FEW_MATCHES),
            (&query, DbBackend::Postgres, 40_000),
            (
                &leaf(TextOp::Contains, true, "ada"),
                DbBackend::Sqlite,
                40_000,
            ),
        ] {
            let sql = page(query, backend, total, 1_000_000);
            assert!(!sql.contains("+("), "{sql}");
        }
        assert!(!Matches::may_walk(
            Some(&query),
            DbBackend::Sqlite,
            FEW_MATCHES
        ));
        assert!(Matches::may_walk(
            Some(&query),
            DbBackend::Sqlite,
            FEW_MATCHES + 1
        ));
    }

    #[test]
    fn few_matches_are_found_first_and_sorted_on_postgres() {
        let query = leaf(TextOp::Contains, true, "abc");
        let page = |backend, total| {
            select_users(
                Some(&query),
                backend,
                SortField::CreationDate,
                false,
                Matches::total(total),
            )
            .limit(10)
            .build(backend)
            .to_string()
        };
        let few = page(DbBackend::Postgres, FEW_MATCHES);
        assert!(
            few.contains(r#" FROM (SELECT "users"."id","#)
                && few.contains(r#"LIKE '%abc%' ESCAPE E'\\' OFFSET 0) AS "users" ORDER BY "users"."created_at" DESC, "users"."id" DESC LIMIT 10"#),
            "{few}"
        );
        for (backend, total) in [
            (DbBackend::Postgres, FEW_MATCHES + 1),
            (DbBackend::Sqlite, 0),
        ] {
            let sql = page(backend, total);
            assert!(!sql.contains("OFFSET 0"), "{sql}");
        }
    }

    #[test]
    fn a_like_pattern_is_narrowed_by_its_longest_literal_run() {
        assert_eq!(like_infix(r"%ann%"), Some("ann".into()));
        assert_eq!(like_infix(r"_a%b\%c\_d%"), Some(r"b%c_d".into()));
        assert_eq!(like_infix("ann%"), None);
        assert_eq!(like_infix(r"%ab\"), Some("ab".into()));
        let like = Query::Filter(Filter::Name(TextMatch::new(TextOp::Like, true, "%Zoë_x%")));
        let text = sql(&like, DbBackend::Sqlite);
        assert!(
            text.contains(r#""users_trigram"."name" MATCH '"zoë"'"#),
            "{text}"
        );
        let short = Query::Filter(Filter::Name(TextMatch::new(TextOp::Like, true, "%zo_x%")));
        assert!(!sql(&short, DbBackend::Sqlite).contains("MATCH"));
    }

    #[test]
    fn many_matches_page_without_the_trigram_index_on_sqlite_but_count_with_it() {
        let query = leaf(TextOp::Contains, true, "abc");
        let page = |total| {
            select_users(
                Some(&query),
                DbBackend::Sqlite,
                SortField::Id,
                true,
                Matches::total(total),
            )
            .build(DbBackend::Sqlite)
            .to_string()
        };
        assert!(page(FEW_MATCHES).contains("MATCH"));
        assert!(!page(FEW_MATCHES + 1).contains("MATCH"));
        let count = filter_users(Some(&query), DbBackend::Sqlite, false)
            .build(DbBackend::Sqlite)
            .to_string();
        assert!(count.contains("MATCH"), "{count}");
    }
}
