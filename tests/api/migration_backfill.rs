//! Migration 3 fills `users.name` for rows written before it, on SQLite and PostgreSQL.

use crate::common;

use common::fixtures::{self, NewUser};
use common::{Backend, FreshDatabase};
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::json;
use userdir::store::{self, entities::user};

async fn existing_rows_get_their_name(backend: Backend) {
    userdir::telemetry::init();
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    let db = store::connect(&database.url).await.unwrap();
    store::migrate(&db).await.unwrap();
    fixtures::base(&db).await;
    fixtures::insert(
        &db,
        vec![
            NewUser::new(0).data(json!({"givenName": "Zoë", "familyName": "Ærø"})),
            NewUser::new(1).data(json!({"name": "ANN", "givenName": "x"})),
            NewUser::new(2),
        ],
    )
    .await;
    let names = |rows: Vec<user::Model>| {
        rows.into_iter()
            .map(|u| (u.name, u.name_lower))
            .collect::<Vec<_>>()
    };
    let expected = vec![
        (Some("Zoë Ærø".to_owned()), Some("zoë ærø".to_owned())),
        (Some("ANN".to_owned()), Some("ann".to_owned())),
        (None, None),
    ];
    let read = || user::Entity::find().order_by_asc(user::Column::Id).all(&db);
    assert_eq!(names(read().await.unwrap()), expected, "written by import");
    // Undo migrations 6 down to 3 (3 drops the columns), then run them again over the existing
    // rows: migration 3's backfill writes the names back.
    common::migrate_down_through_and_up(&db, "m20261123_000003_rest_dialects").await;
    assert_eq!(
        names(read().await.unwrap()),
        expected,
        "filled by the migration"
    );
    db.close().await.ok();
    database.drop().await;
}

#[tokio::test]
async fn sqlite() {
    existing_rows_get_their_name(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    existing_rows_get_their_name(Backend::Postgres).await;
}
