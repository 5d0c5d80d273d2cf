//! Inserts of many rows in statements of a few sizes.
//!
//! Every statement is prepared and kept in its connection's statement cache (sqlx, by its
//! text), and a multi-row INSERT's text depends on its number of rows: batches of every size
//! from 1 to 256 would fill each pooled connection's cache with a few hundred large statements
//! (on SQLite, compiled programs in the server's own memory: +30 MiB of peak RSS under a burst
//! of CreateUsers at 32 clients). So rows go in chunks whose sizes are powers of two, the
//! largest first: at most a dozen texts per table, and a batch of n rows takes as many
//! statements as n has one bits.

use sea_orm::{ActiveModelTrait, DatabaseTransaction, DbErr, EntityTrait, Iterable};

/// Most values one insert binds: SQLite takes 32,766, PostgreSQL 65,535.
const MAX_VALUES: usize = 30_000;

/// Inserts `rows` (nothing without rows) in chunks of [`sizes`], each within the values one
/// statement may bind.
pub async fn insert_all<E>(
    txn: &DatabaseTransaction,
    rows: Vec<E::ActiveModel>,
) -> Result<(), DbErr>
where
    E: EntityTrait,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let most = (MAX_VALUES / E::Column::iter().count()).max(1);
    let mut rows = rows.into_iter();
    for size in sizes(rows.len(), most) {
        E::insert_many(rows.by_ref().take(size))
            .exec_without_returning(txn)
            .await?;
    }
    Ok(())
}

/// `n` split into powers of two of at most `most` each, the largest first.
pub fn sizes(n: usize, most: usize) -> impl Iterator<Item = usize> {
    let largest = 1usize << most.max(1).ilog2();
    let mut left = n;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let size = largest.min(1 << left.ilog2());
        left -= size;
        Some(size)
    })
}

#[cfg(test)]
mod tests {
    use super::sizes;

    #[test]
    fn rows_are_split_into_powers_of_two() {
        assert_eq!(sizes(0, 256).collect::<Vec<_>>(), Vec::<usize>::new());
        assert_eq!(sizes(1, 256).collect::<Vec<_>>(), [1]);
        assert_eq!(sizes(7, 256).collect::<Vec<_>>(), [4, 2, 1]);
        assert_eq!(sizes(256, 256).collect::<Vec<_>>(), [256]);
        assert_eq!(sizes(600, 300).collect::<Vec<_>>(), [256, 256, 64, 16, 8]);
        assert_eq!(sizes(3, 1).collect::<Vec<_>>(), [1, 1, 1]);
        // Every size a power of two within the bound, adding up to n.
        for n in 0..2_000 {
            let all: Vec<usize> = sizes(n, 1000).collect();
            assert_eq!(all.iter().sum::<usize>(), n);
            assert!(all.iter().all(|s| s.is_power_of_two() && *s <= 512));
        }
    }
}
