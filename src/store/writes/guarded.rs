//! Inserts that check a condition in the same statement. A write's statements run one after
//! the other while it holds the event log's lock, so a check that would otherwise be a read of
//! its own (is the name free? is the schema still at the revision the data was checked
//! against?) is folded into the insert and costs no round trip.

use sea_orm::sea_query::{Condition, Expr, Query};
use sea_orm::{ActiveModelTrait, ActiveValue, ConnectionTrait, DbErr, EntityTrait, Iterable};

/// `INSERT INTO <table> (<columns set on row>) SELECT <their values> WHERE <condition>`: the row
/// goes in only where `condition` holds when the statement runs. Returns whether it went in.
/// Constraint violations are the database's errors, as for a plain insert.
pub async fn insert_where<A>(
    connection: &impl ConnectionTrait,
    row: A,
    condition: Condition,
) -> Result<bool, DbErr>
where
    A: ActiveModelTrait,
{
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for column in <A::Entity as EntityTrait>::Column::iter() {
        if let ActiveValue::Set(value) | ActiveValue::Unchanged(value) = row.get(column) {
            columns.push(column);
            values.push(Expr::val(value));
        }
    }
    let mut source = Query::select();
    source.exprs(values).cond_where(condition);
    let mut insert = Query::insert();
    insert
        .into_table(A::Entity::default())
        .columns(columns)
        .select_from(source)
        .map_err(|error| DbErr::Custom(format!("a guarded insert: {error}")))?;
    Ok(connection.execute(&insert).await?.rows_affected() == 1)
}
