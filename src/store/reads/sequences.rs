//! The event log's sequences as expressions that a read folds into a statement it runs anyway:
//! the newest event a caller has processed, and an instance sequence as the caller counts it.
//! These are the one-statement forms of `events::processed` and `events::as_seen` (same rules,
//! same answers), so that a page or a user costs no round trip of its own for its sequences.

use sea_orm::sea_query::{Expr, ExprTrait, Func, Order, Query as Sql, SelectStatement};

use crate::domain::Scope;
use crate::store::entities::event;

/// The sequence of the newest event a caller in `scope` has processed (NULL without events):
/// the instance's newest event, or the position of the organization's newest one in its stream.
pub fn processed_sequence(scope: &Scope) -> Expr {
    match scope.organization() {
        None => Expr::from(newest(scope).column(event::Column::Sequence).to_owned()),
        // An organization's events always have a position; 0 is `events::latest_in`'s default.
        Some(_) => Func::coalesce([
            Expr::from(
                newest(scope)
                    .column(event::Column::OrganizationSequence)
                    .to_owned(),
            ),
            Expr::val(0i64),
        ])
        .into(),
    }
}

/// The time of that newest event; NULL exactly when the caller has processed no event, which
/// is how a reader tells "no event" from the position 0.
pub fn processed_at(scope: &Scope) -> Expr {
    Expr::from(newest(scope).column(event::Column::CreatedAt).to_owned())
}

/// `sequence` (an instance sequence, e.g. a row's column) as a caller in `scope` counts it:
/// itself instance-wide; for an organization, how far its stream had come at that point (the
/// event's own position for the organization's events, 0 before its first event).
pub fn as_seen(scope: &Scope, sequence: Expr) -> Expr {
    let Some(organization) = scope.organization() else {
        return sequence;
    };
    let position = Sql::select()
        .column(event::Column::OrganizationSequence)
        .from(event::Entity)
        .and_where(Expr::col((event::Entity, event::Column::OrganizationId)).eq(organization))
        .and_where(Expr::col((event::Entity, event::Column::Sequence)).lte(sequence))
        .order_by((event::Entity, event::Column::Sequence), Order::Desc)
        .limit(1)
        .to_owned();
    Func::coalesce([Expr::from(position), Expr::val(0i64)]).into()
}

/// The newest event of the caller's stream, columns to be chosen.
fn newest(scope: &Scope) -> SelectStatement {
    let mut select = Sql::select();
    select.from(event::Entity).limit(1);
    match scope.organization() {
        None => select.order_by((event::Entity, event::Column::Sequence), Order::Desc),
        Some(organization) => select
            .and_where(Expr::col((event::Entity, event::Column::OrganizationId)).eq(organization))
            .order_by(
                (event::Entity, event::Column::OrganizationSequence),
                Order::Desc,
            ),
    };
    select
}
