//! Rewrites the user counters and the users' authenticator documents from the rows (`userdir
//! check --repair`): for a database whose counters drifted, e.g. after rows were changed with
//! the triggers disabled, or whose authenticator rows were changed by SQL of an operator's own.

use sea_orm::{DatabaseConnection, DbErr, EntityTrait};

use crate::store::entities::{role_user_count, user_count};
use crate::store::reads::recount::{Counter, count_rows};
use crate::store::writes::events;
use crate::store::{authenticators, begin_write};

/// Recounts and replaces every counter in one transaction. It holds the event-log lock, like
/// every writer, so no write changes the rows between the recount and the replacement.
/// Returns how many counters it wrote.
pub async fn repair(db: &DatabaseConnection) -> Result<usize, DbErr> {
    let txn = begin_write(db).await?;
    events::lock(&txn).await?;
    let counted = count_rows(&*txn).await?;
    user_count::Entity::delete_many().exec(&*txn).await?;
    role_user_count::Entity::delete_many().exec(&*txn).await?;
    let mut users = Vec::new();
    let mut holders = Vec::new();
    for (counter, total) in &counted {
        match counter.clone() {
            Counter::Users {
                organization_id,
                state,
            } => users.push(user_count::ActiveModel::from(user_count::Model {
                organization_id,
                state,
                total: *total,
            })),
            Counter::RoleHolders {
                role_id,
                organization_id,
                state,
            } => holders.push(role_user_count::ActiveModel::from(role_user_count::Model {
                role_id,
                organization_id,
                state,
                total: *total,
            })),
        }
    }
    // Chunks keep each statement under every backend's limit of bound parameters.
    for chunk in users.chunks(1000) {
        user_count::Entity::insert_many(chunk.to_vec())
            .exec(&*txn)
            .await?;
    }
    for chunk in holders.chunks(1000) {
        role_user_count::Entity::insert_many(chunk.to_vec())
            .exec(&*txn)
            .await?;
    }
    txn.commit().await?;
    Ok(counted.len())
}

/// Rewrites the authenticator documents of the users `ids` from their rows, in one transaction
/// holding the event-log lock like every writer. Returns how many it rewrote.
pub async fn repair_documents(db: &DatabaseConnection, ids: &[String]) -> Result<usize, DbErr> {
    let txn = begin_write(db).await?;
    events::lock(&txn).await?;
    authenticators::refresh(&*txn, ids).await?;
    txn.commit().await?;
    Ok(ids.len())
}
