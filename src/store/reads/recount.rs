//! Counts users again, from the rows themselves, and compares them with the counters the
//! triggers keep (see `totals`): what `userdir check` reports.

use std::collections::BTreeMap;
use std::fmt;

use sea_orm::sea_query::{Asterisk, Expr, ExprTrait};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, JoinType, QuerySelect, RelationTrait,
};

use crate::store::entities::{role_assignment, role_user_count, user, user_count};
use crate::store::{Plans, begin_snapshot};

/// One counter: the users of an organization in a state, or those of them holding a role.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Counter {
    Users {
        organization_id: String,
        state: i16,
    },
    RoleHolders {
        role_id: String,
        organization_id: String,
        state: i16,
    },
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Users {
                organization_id,
                state,
            } => write!(
                f,
                "users of organization {organization_id} in state {state}"
            ),
            Self::RoleHolders {
                role_id,
                organization_id,
                state,
            } => write!(
                f,
                "holders of role {role_id} in organization {organization_id} in state {state}"
            ),
        }
    }
}

/// Counter values by counter; a missing counter is 0.
pub type Counts = BTreeMap<Counter, i64>;

/// A counter that does not hold what the rows say.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    pub counter: Counter,
    pub kept: i64,
    pub counted: i64,
}

/// What a recount found, from one snapshot.
#[derive(Clone, Debug)]
pub struct Recount {
    /// What the rows say, every counter that is not 0.
    pub counted: Counts,
    pub drift: Vec<Drift>,
}

/// Recounts every counter in one snapshot, so that concurrent writes never show as drift.
pub async fn recount(db: &DatabaseConnection) -> Result<Recount, DbErr> {
    let txn = begin_snapshot(db, Plans::PerValue).await?;
    let counted = count_rows(&txn).await?;
    let kept = kept(&txn).await?;
    txn.commit().await?;
    Ok(Recount {
        drift: compare(&kept, &counted),
        counted,
    })
}

/// The counters as the rows say they should be.
pub async fn count_rows(db: &impl ConnectionTrait) -> Result<Counts, DbErr> {
    let mut counts = Counts::new();
    let users: Vec<(String, i16, i64)> = user::Entity::find()
        .select_only()
        .column(user::Column::OrganizationId)
        .column(user::Column::State)
        .expr(Expr::col(Asterisk).count())
        .group_by(user::Column::OrganizationId)
        .group_by(user::Column::State)
        .into_tuple()
        .all(db)
        .await?;
    for (organization_id, state, total) in users {
        counts.insert(
            Counter::Users {
                organization_id,
                state,
            },
            total,
        );
    }
    let holders: Vec<(String, String, i16, i64)> = role_assignment::Entity::find()
        .select_only()
        .column(role_assignment::Column::RoleId)
        .column_as(
            Expr::col((user::Entity, user::Column::OrganizationId)),
            "organization_id",
        )
        .column_as(Expr::col((user::Entity, user::Column::State)), "state")
        .expr(Expr::col(Asterisk).count())
        .join(JoinType::InnerJoin, role_assignment::Relation::Holder.def())
        .group_by(role_assignment::Column::RoleId)
        .group_by(Expr::col((user::Entity, user::Column::OrganizationId)))
        .group_by(Expr::col((user::Entity, user::Column::State)))
        .into_tuple()
        .all(db)
        .await?;
    for (role_id, organization_id, state, total) in holders {
        counts.insert(
            Counter::RoleHolders {
                role_id,
                organization_id,
                state,
            },
            total,
        );
    }
    Ok(counts)
}

/// The counters as the triggers keep them.
async fn kept(db: &impl ConnectionTrait) -> Result<Counts, DbErr> {
    let mut counts = Counts::new();
    for row in user_count::Entity::find().all(db).await? {
        counts.insert(
            Counter::Users {
                organization_id: row.organization_id,
                state: row.state,
            },
            row.total,
        );
    }
    for row in role_user_count::Entity::find().all(db).await? {
        counts.insert(
            Counter::RoleHolders {
                role_id: row.role_id,
                organization_id: row.organization_id,
                state: row.state,
            },
            row.total,
        );
    }
    Ok(counts)
}

/// Every counter whose kept value differs from the counted one (a missing one is 0).
fn compare(kept: &Counts, counted: &Counts) -> Vec<Drift> {
    let counters: std::collections::BTreeSet<&Counter> =
        kept.keys().chain(counted.keys()).collect();
    counters
        .into_iter()
        .filter_map(|counter| {
            let kept = kept.get(counter).copied().unwrap_or_default();
            let counted = counted.get(counter).copied().unwrap_or_default();
            (kept != counted).then(|| Drift {
                counter: counter.clone(),
                kept,
                counted,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users(organization_id: &str, state: i16) -> Counter {
        Counter::Users {
            organization_id: organization_id.into(),
            state,
        }
    }

    #[test]
    fn zero_and_missing_counters_agree_and_the_rest_drift() {
        let kept = Counts::from([
            (users("o1", 1), 3),
            (users("o2", 1), 0),
            (users("o3", 2), 5),
        ]);
        let counted = Counts::from([
            (users("o1", 1), 3),
            (users("o3", 2), 4),
            (users("o4", 1), 1),
        ]);
        assert_eq!(
            compare(&kept, &counted),
            vec![
                Drift {
                    counter: users("o3", 2),
                    kept: 5,
                    counted: 4
                },
                Drift {
                    counter: users("o4", 1),
                    kept: 0,
                    counted: 1
                },
            ]
        );
    }
}
