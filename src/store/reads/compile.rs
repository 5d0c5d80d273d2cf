//! The store's SQL for searches: compiles the query tree into sea-query expressions over the
//! `users` table (and a text match on organization names with the same rules). Values are
//! bound as parameters, LIKE patterns are escaped, and every leaf is two-valued (never SQL
//! NULL), so NOT is the true complement of its inner query.

use sea_orm::sea_query::{
    Condition, Expr, ExprTrait, Func, LikeExpr, NullOrdering, Order, Query as Sql,
};
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryOrder, Select};

use crate::domain::fold_case;
use crate::query::{
    CompareOp, Comparison, Cursor, Filter, Query, SortField, SortValue, TextMatch, TextOp,
};
use crate::store::entities::{organization, role_assignment, user, username};

/// The escape character of every LIKE pattern we build.
const LIKE_ESCAPE: char = '\\';

/// The WHERE condition of a query.
pub fn condition(query: &Query) -> Condition {
    match query {
        Query::And(queries) => queries
            .iter()
            .fold(Condition::all(), |all, query| all.add(condition(query))),
        Query::Or(queries) => queries
            .iter()
            .fold(Condition::any(), |any, query| any.add(condition(query))),
        Query::Not(query) => condition(query).not(),
        Query::Filter(filter) => Condition::all().add(filter_expr(filter)),
    }
}

/// Users matching the query (all users for None), unordered: what a count needs.
pub fn filter_users(query: Option<&Query>) -> Select<user::Entity> {
    let select = user::Entity::find();
    match query {
        Some(query) => select.filter(condition(query)),
        None => select,
    }
}

/// Users matching the query, in the requested order.
pub fn select_users(
    query: Option<&Query>,
    sort: SortField,
    ascending: bool,
) -> Select<user::Entity> {
    order(filter_users(query), sort, ascending)
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
    sort: SortField,
    ascending: bool,
    cursor: &Cursor,
) -> Vec<Select<user::Entity>> {
    use user::Column as C;
    let id = Expr::col((user::Entity, C::Id));
    let after_id = || {
        if ascending {
            id.clone().gt(cursor.id.as_str())
        } else {
            id.clone().lt(cursor.id.as_str())
        }
    };
    let segment = |condition: Expr| {
        let select = filter_users(query).filter(condition);
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

/// A text property: the column compared exactly and the column holding its case folding.
struct TextColumn {
    exact: Expr,
    folded: Expr,
    nullable: bool,
}

impl TextColumn {
    fn users(exact: user::Column, folded: user::Column, nullable: bool) -> Self {
        Self {
            exact: Expr::col((user::Entity, exact)),
            folded: Expr::col((user::Entity, folded)),
            nullable,
        }
    }

    /// Ids are generated lower-case, so the column is its own folding.
    fn id(column: user::Column) -> Self {
        Self::users(column, column, false)
    }
}

fn filter_expr(filter: &Filter) -> Expr {
    use user::Column as C;
    match filter {
        Filter::UserId(text) => text_expr(TextColumn::id(C::Id), text),
        Filter::OrganizationId(text) => text_expr(TextColumn::id(C::OrganizationId), text),
        Filter::Email(text) => text_expr(TextColumn::users(C::Email, C::EmailLower, true), text),
        Filter::Phone(text) => text_expr(TextColumn::users(C::Phone, C::PhoneLower, true), text),
        Filter::Name(text) => text_expr(TextColumn::users(C::Name, C::NameLower, true), text),
        Filter::SchemaType(text) => text_expr(
            TextColumn::users(C::SchemaType, C::SchemaTypeLower, false),
            text,
        ),
        Filter::SchemaId(id) => Expr::col((user::Entity, C::SchemaId)).eq(id.as_str()),
        Filter::State(state) => Expr::col((user::Entity, C::State)).eq(state.number()),
        Filter::Username {
            text,
            organization_specific,
        } => username_expr(text, *organization_specific),
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
    };
    Condition::all().add(text_expr(column, text))
}

/// `id IN (users with a matching username)`: the database seeks the username index first
/// instead of probing every user, and one-to-many rows never multiply users in a count.
/// `user_id` is never NULL, so the membership test is two-valued and NOT stays a complement.
fn username_expr(text: &TextMatch, organization_specific: Option<bool>) -> Expr {
    use username::Column as U;
    let column = TextColumn {
        exact: Expr::col((username::Entity, U::Username)),
        folded: Expr::col((username::Entity, U::UsernameLower)),
        nullable: false,
    };
    let mut names = Sql::select();
    names
        .column((username::Entity, U::UserId))
        .from(username::Entity)
        .and_where(text_expr(column, text));
    if let Some(specific) = organization_specific {
        names.and_where(U::IsOrganizationSpecific.eq(specific));
    }
    Expr::col((user::Entity, user::Column::Id)).in_subquery(names.to_owned())
}

fn text_expr(column: TextColumn, text: &TextMatch) -> Expr {
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
        op => target.like(LikeExpr::new(like_pattern(op, &value)).escape(LIKE_ESCAPE)),
    };
    if column.nullable {
        // NULL would make the comparison unknown, and NOT(unknown) is unknown: say false.
        column.exact.is_not_null().and(comparison)
    } else {
        comparison
    }
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
        select_users(Some(query), SortField::Email, false)
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
        let sql = select_users(None, SortField::CreationDate, false)
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
            select_users_after(None, sort, ascending, &cursor(value))
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
}
