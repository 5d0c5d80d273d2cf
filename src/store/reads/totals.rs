//! The exact total of a user search, read from the counters where they answer it and counted
//! otherwise. The counters (`user_counts`, `role_user_counts`, kept by the triggers of
//! migration `m20261202_000008_user_counts`) answer every AND of organization, state and one
//! role: the unfiltered list, an organization-scoped caller's list, an admin UI's filtered
//! pages, a role's holders. Summing a few counter rows costs the same at a million users as at
//! ten; `count(*)` costs what it matches, which is what ZITADEL and Keycloak pay on every page.

use sea_orm::sea_query::{
    Asterisk, DynIden, Expr, ExprTrait, Func, IntoIden, Query as Sql, SelectStatement,
};
use sea_orm::{DbBackend, QuerySelect, QueryTrait};

use crate::domain::fold_case;
use crate::query::{Filter, Query, TextOp};
use crate::store::entities::{role_user_count, user_count};
use crate::store::reads::compile;

/// The column of the total in [`select_total`]'s statement.
pub const TOTAL: &str = "total";

/// `SELECT <total> AS total` for the users matching `query` (all users for None), from the
/// counters when they answer it, otherwise `count(*)` over the matching users; `planned_once`
/// for a statement planned once for all values (see `compile::Planning`).
pub fn select_total(
    query: Option<&Query>,
    backend: DbBackend,
    planned_once: bool,
) -> SelectStatement {
    match Counted::from_query(query) {
        Some(counted) => counted.select(),
        None => compile::filter_users(query, backend, planned_once)
            .select_only()
            .expr_as(Expr::col(Asterisk).count(), TOTAL)
            .into_query(),
    }
}

/// A search the counters answer: the users in all of these organizations, states and roles
/// (several different values of one kind match nobody, like the same conditions on users).
#[derive(Debug, Default, PartialEq)]
struct Counted {
    organizations: Vec<String>,
    states: Vec<i16>,
    /// At most one: two roles ask for users holding both, which no counter knows.
    role: Option<String>,
}

impl Counted {
    fn from_query(query: Option<&Query>) -> Option<Self> {
        let mut counted = Self::default();
        if let Some(query) = query {
            counted.add(query)?;
        }
        Some(counted)
    }

    /// Adds a conjunct; None when the counters cannot answer it.
    fn add(&mut self, query: &Query) -> Option<()> {
        match query {
            Query::And(queries) => queries.iter().try_for_each(|query| self.add(query)),
            Query::Filter(Filter::OrganizationId(text)) if text.op == TextOp::Equals => {
                // As the compiled filter compares: ids are their own case folding.
                self.organizations.push(if text.ignore_case {
                    fold_case(&text.value)
                } else {
                    text.value.clone()
                });
                Some(())
            }
            Query::Filter(Filter::State(state)) => {
                self.states.push(state.number());
                Some(())
            }
            Query::Filter(Filter::Role(role)) => match &self.role {
                Some(other) if other != role => None,
                _ => {
                    self.role = Some(role.clone());
                    Some(())
                }
            },
            _ => None,
        }
    }

    fn select(self) -> SelectStatement {
        // The counter table and its columns: the role's holders, or every user.
        let (table, role, organization, state, total) = match &self.role {
            Some(_) => {
                use role_user_count::Column as C;
                (
                    role_user_count::Entity.into_iden(),
                    Some(C::RoleId.into_iden()),
                    C::OrganizationId.into_iden(),
                    C::State.into_iden(),
                    C::Total.into_iden(),
                )
            }
            None => {
                use user_count::Column as C;
                (
                    user_count::Entity.into_iden(),
                    None,
                    C::OrganizationId.into_iden(),
                    C::State.into_iden(),
                    C::Total.into_iden(),
                )
            }
        };
        let column = |column: &DynIden| Expr::col((table.clone(), column.clone()));
        // SUM of bigints is numeric on PostgreSQL; the total is read as a bigint.
        let sum = Expr::from(Func::coalesce([
            Func::sum(column(&total)).into(),
            Expr::val(0i64),
        ]))
        .cast_as("bigint");
        let mut select = Sql::select();
        select.expr_as(sum, TOTAL).from(table.clone());
        if let (Some(role_column), Some(role)) = (&role, self.role) {
            select.and_where(column(role_column).eq(role));
        }
        for value in self.organizations {
            select.and_where(column(&organization).eq(value));
        }
        for value in self.states {
            select.and_where(column(&state).eq(value));
        }
        select
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::UserState;
    use crate::query::TextMatch;

    fn organization(id: &str) -> Query {
        Query::Filter(Filter::OrganizationId(TextMatch::equals(id)))
    }

    fn state(state: UserState) -> Query {
        Query::Filter(Filter::State(state))
    }

    fn role(id: &str) -> Query {
        Query::Filter(Filter::Role(id.into()))
    }

    #[test]
    fn no_query_is_every_counter() {
        assert_eq!(Counted::from_query(None), Some(Counted::default()));
    }

    #[test]
    fn nested_ands_of_organization_state_and_role_are_counted() {
        let query = Query::And(vec![
            organization("o1"),
            Query::And(vec![state(UserState::Locked), role("r1")]),
            role("r1"),
        ]);
        assert_eq!(
            Counted::from_query(Some(&query)),
            Some(Counted {
                organizations: vec!["o1".into()],
                states: vec![UserState::Locked.number()],
                role: Some("r1".into()),
            })
        );
    }

    #[test]
    fn anything_else_is_counted_by_the_database() {
        let email = Query::Filter(Filter::Email(TextMatch::equals("a@example.com")));
        for query in [
            Query::Or(vec![organization("o1"), organization("o2")]),
            Query::Not(Box::new(state(UserState::Active))),
            Query::And(vec![organization("o1"), email]),
            Query::And(vec![role("r1"), role("r2")]),
            Query::Filter(Filter::OrganizationId(TextMatch::new(
                TextOp::StartsWith,
                false,
                "o",
            ))),
            Query::Filter(Filter::Nothing),
        ] {
            assert_eq!(Counted::from_query(Some(&query)), None, "{query:?}");
        }
    }

    #[test]
    fn counted_totals_sum_the_counters_of_their_table() {
        let sql = |query: &Query| {
            select_total(Some(query), DbBackend::Postgres, false)
                .to_string(sea_orm::sea_query::PostgresQueryBuilder)
        };
        let holders = sql(&Query::And(vec![role("r1"), organization("o1")]));
        assert_eq!(
            holders,
            r#"SELECT CAST(COALESCE(SUM("role_user_counts"."total"), 0) AS bigint) AS "total" FROM "role_user_counts" WHERE "role_user_counts"."role_id" = 'r1' AND "role_user_counts"."organization_id" = 'o1'"#
        );
        let users = sql(&state(UserState::Locked));
        assert_eq!(
            users,
            r#"SELECT CAST(COALESCE(SUM("user_counts"."total"), 0) AS bigint) AS "total" FROM "user_counts" WHERE "user_counts"."state" = 4"#
        );
        let counted = sql(&Query::Not(Box::new(state(UserState::Locked))));
        assert!(
            counted.contains(r#"COUNT(*) AS "total" FROM "users""#),
            "{counted}"
        );
    }

    #[test]
    fn ignore_case_organization_ids_compare_folded() {
        let query = Query::Filter(Filter::OrganizationId(TextMatch::new(
            TextOp::Equals,
            true,
            "ORG",
        )));
        assert_eq!(
            Counted::from_query(Some(&query)).map(|c| c.organizations),
            Some(vec!["org".into()])
        );
    }
}
