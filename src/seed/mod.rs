//! `userdir seed`: a realistic, deterministic population, written in batches.
//!
//! Organizations and schemas are fixed and created when missing. Users are numbered from the
//! directory's current user count, and user N of seed S is always the same user (ids
//! included), whatever the batch size or the backend.

mod names;
mod population;

use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use sea_orm::{ConnectionTrait, DatabaseConnection, EntityTrait, PaginatorTrait, QuerySelect};

pub use population::{Population, SEED_PASSWORD};

use crate::store::entities::{organization, user, user_schema};
use crate::store::writes::import;

pub struct SeedOptions {
    pub users: u64,
    pub seed: u64,
    pub batch_size: usize,
    pub progress: bool,
}

pub struct SeedReport {
    pub users: u64,
    /// Number of the first user added (the user count before seeding).
    pub first_index: u64,
    pub elapsed: Duration,
}

pub async fn run(db: &DatabaseConnection, options: SeedOptions) -> anyhow::Result<SeedReport> {
    let started = Instant::now();
    let population = Population::new(options.seed)?;
    ensure_fixed_objects(db, &population).await?;

    let first_index = user::Entity::find().count(db).await?;
    let bar = if options.progress {
        ProgressBar::new(options.users)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template(
            "{spinner} seeding [{bar:40}] {pos}/{len} users ({per_sec}, {eta} left)",
        )?
        .progress_chars("=> "),
    );
    let end = first_index + options.users;
    let mut next = first_index;
    while next < end {
        let stop = end.min(next + options.batch_size as u64);
        let batch = (next..stop).map(|index| population.user(index)).collect();
        import::import_users(db, batch).await?;
        bar.inc(stop - next);
        next = stop;
    }
    bar.finish_and_clear();
    // Fresh statistics, so the query planner knows the new population at once.
    db.execute_unprepared("ANALYZE").await?;
    Ok(SeedReport {
        users: options.users,
        first_index,
        elapsed: started.elapsed(),
    })
}

/// Creates the population's organizations and schemas unless a previous seed did.
async fn ensure_fixed_objects(
    db: &DatabaseConnection,
    population: &Population,
) -> anyhow::Result<()> {
    let existing_orgs: Vec<String> = organization::Entity::find()
        .select_only()
        .column(organization::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let missing_orgs: Vec<_> = population
        .organizations()
        .into_iter()
        .filter(|org| !existing_orgs.contains(&org.id))
        .collect();
    if !missing_orgs.is_empty() {
        import::import_organizations(db, missing_orgs).await?;
    }
    let existing_schemas: Vec<String> = user_schema::Entity::find()
        .select_only()
        .column(user_schema::Column::Id)
        .into_tuple()
        .all(db)
        .await?;
    let missing_schemas: Vec<_> = population
        .schemas()
        .into_iter()
        .filter(|schema| !existing_schemas.contains(&schema.id))
        .collect();
    if !missing_schemas.is_empty() {
        import::import_schemas(db, missing_schemas).await?;
    }
    Ok(())
}
