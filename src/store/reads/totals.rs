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
    if let Some(counted) = Counted::from_query(query) {
        return counted.select();
    }
    if let Some(split) = query.and_then(SplitOr::of) {
        return split.select(backend, planned_once);
    }
    count(query, backend, planned_once)
}

/// `SELECT count(*) AS total` over the users matching `query`.
fn count(query: Option<&Query>, backend: DbBackend, planned_once: bool) -> SelectStatement {
    compile::filter_users(query, backend, planned_once)
        .select_only()
        .expr_as(Expr::col(Asterisk).count(), TOTAL)
        .into_query()
}

/// An OR the counters answer one branch of, among conjuncts they answer (none, or the
/// organization an organization's caller is narrowed to): `state = locked OR email starts with
/// "ada"`. Its total is that branch's users from the counters plus the users of the other
/// branches that are not in it, |A ∪ B| = |A| + |B ∖ A|, so the database counts only what the
/// other branches find (through their indexes) instead of merging every match of the counted
/// branch with them: 40,000 index entries read and deduplicated for the locked users of a
/// million. Every leaf is two-valued, so `NOT A` is exactly the users outside A.
#[derive(Debug, PartialEq)]
struct SplitOr {
    /// The counted branch, with the counted conjuncts beside the OR.
    counted: Counted,
    /// The users the database counts: the conjuncts beside the OR, the other branches, and
    /// not the counted branch; None for an OR of one branch.
    rest: Option<Query>,
}

impl SplitOr {
    fn of(query: &Query) -> Option<Self> {
        let conjuncts = match query {
            Query::And(queries) => queries.as_slice(),
            other => std::slice::from_ref(other),
        };
        let mut ors = conjuncts.iter().filter(|q| matches!(q, Query::Or(_)));
        let (Some(Query::Or(branches)), None) = (ors.next(), ors.next()) else {
            return None;
        };
        let beside: Vec<Query> = conjuncts
            .iter()
            .filter(|q| !matches!(q, Query::Or(_)))
            .cloned()
            .collect();
        let counted_with = |branch: &Query| {
            let mut conjuncts = beside.clone();
            conjuncts.push(branch.clone());
            Counted::from_query(Some(&Query::And(conjuncts)))
        };
        // The first branch the counters answer; which one changes only what the database
        // counts, never the total.
        let (at, counted) = branches
            .iter()
            .enumerate()
            .find_map(|(at, branch)| counted_with(branch).map(|counted| (at, counted)))?;
        let mut others = branches.clone();
        let branch = others.remove(at);
        let rest = (!others.is_empty()).then(|| {
            let mut rest = beside;
            if others.len() == 1 {
                rest.append(&mut others);
            } else {
                rest.push(Query::Or(others));
            }
            rest.push(Query::Not(Box::new(branch)));
            Query::And(rest)
        });
        Some(Self { counted, rest })
    }

    /// `SELECT (<the counted branch>) + (SELECT count(*) <of the rest>) AS total`.
    fn select(self, backend: DbBackend, planned_once: bool) -> SelectStatement {
        let Some(rest) = self.rest else {
            return self.counted.select();
        };
        let scalar = |select: SelectStatement| Expr::SubQuery(None, Box::new(select.into()));
        let mut select = Sql::select();
        select.expr_as(
            scalar(self.counted.select()).add(scalar(count(Some(&rest), backend, planned_once))),
            TOTAL,
        );
        select
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

    fn email_prefix(prefix: &str) -> Query {
        Query::Filter(Filter::Email(TextMatch::new(
            TextOp::StartsWith,
            true,
            prefix,
        )))
    }

    #[test]
    fn an_or_with_a_counted_branch_counts_the_others_outside_it() {
        let locked = state(UserState::Locked);
        let split = |query: &Query| SplitOr::of(query);
        // The organization beside the OR goes with every part.
        let query = Query::And(vec![
            organization("o1"),
            Query::Or(vec![
                email_prefix("ada"),
                locked.clone(),
                email_prefix("bob"),
            ]),
        ]);
        assert_eq!(
            split(&query),
            Some(SplitOr {
                counted: Counted {
                    organizations: vec!["o1".into()],
                    states: vec![UserState::Locked.number()],
                    role: None,
                },
                rest: Some(Query::And(vec![
                    organization("o1"),
                    Query::Or(vec![email_prefix("ada"), email_prefix("bob")]),
                    Query::Not(Box::new(locked.clone())),
                ])),
            })
        );
        // Two branches: the other one alone, outside the counted one.
        let query = Query::Or(vec![locked.clone(), email_prefix("ada")]);
        assert_eq!(
            split(&query).and_then(|split| split.rest),
            Some(Query::And(vec![
                email_prefix("ada"),
                Query::Not(Box::new(locked.clone())),
            ]))
        );
        let sql = select_total(Some(&query), DbBackend::Postgres, false)
            .to_string(sea_orm::sea_query::PostgresQueryBuilder);
        assert!(
            sql.starts_with(
                r#"SELECT (SELECT CAST(COALESCE(SUM("user_counts"."total"), 0) AS bigint) AS "total" FROM "user_counts" WHERE "user_counts"."state" = 4) + (SELECT COUNT(*) AS "total" FROM "users" WHERE"#
            ) && sql.contains(r#"NOT "users"."state" = 4"#),
            "{sql}"
        );
        // An OR of one counted branch is counted whole.
        assert_eq!(split(&Query::Or(vec![locked.clone()])).unwrap().rest, None);
    }

    #[test]
    fn ors_without_a_counted_branch_or_beside_uncounted_conjuncts_are_counted_whole() {
        let locked = state(UserState::Locked);
        for query in [
            Query::Or(vec![email_prefix("ada"), email_prefix("bob")]),
            Query::And(vec![
                email_prefix("ada"),
                Query::Or(vec![locked.clone(), email_prefix("bob")]),
            ]),
            // Two ORs: neither is beside counted conjuncts only.
            Query::And(vec![
                Query::Or(vec![locked.clone(), email_prefix("bob")]),
                Query::Or(vec![locked.clone(), email_prefix("ada")]),
            ]),
            // A second role beside the one the branch would count.
            Query::And(vec![
                role("r1"),
                Query::Or(vec![role("r2"), email_prefix("ada")]),
            ]),
        ] {
            assert_eq!(SplitOr::of(&query), None, "{query:?}");
        }
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
