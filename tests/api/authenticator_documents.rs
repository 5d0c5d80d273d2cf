//! The users' authenticator documents (`store::authenticators`) read the same whoever wrote
//! them: an import (`authenticators::document`, from the rows it writes), a unit of work's
//! refresh (`authenticators::refresh`, SQL over the tables) and migration 13 (its own SQL over
//! the tables), on SQLite and PostgreSQL.

use crate::common;

use common::fixtures::{self, NewUser};
use common::{Backend, FreshDatabase};
use sea_orm::{DatabaseConnection, EntityTrait, QueryOrder};
use userdir::domain::Authenticators;
use userdir::store::{self, authenticators, entities::user};

/// Every user's id and authenticators, as its document reads.
async fn documents(db: &DatabaseConnection) -> Vec<(String, Authenticators)> {
    user::Entity::find()
        .order_by_asc(user::Column::Id)
        .all(db)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            let read = authenticators::read(&row.id, row.authenticators.as_deref()).unwrap();
            (row.id, read)
        })
        .collect()
}

async fn every_writer_writes_the_same_document(backend: Backend) {
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
            NewUser::new(0).every_authenticator(),
            NewUser::new(1),
            NewUser::new(2)
                .every_authenticator()
                .username("second-login", true),
            NewUser::new(3).without_usernames(),
        ],
    )
    .await;
    let imported = documents(&db).await;
    let full = &imported[0].1;
    assert!(
        full.password.is_some()
            && [
                full.usernames.len(),
                full.web_auth_n.len(),
                full.totps.len(),
                full.otp_sms.len(),
                full.otp_email.len(),
                full.authentication_keys.len(),
                full.identity_providers.len(),
            ]
            .iter()
            .all(|&n| n > 0),
        "an imported user's document holds every kind: {full:?}"
    );
    assert_eq!(imported[2].1.usernames.len(), 2, "{:?}", imported[2].1);
    assert_eq!(imported[3].1, Authenticators::default());

    let ids: Vec<String> = imported.iter().map(|(id, _)| id.clone()).collect();
    authenticators::refresh(&db, &ids).await.unwrap();
    assert_eq!(documents(&db).await, imported, "rewritten from the tables");

    common::migrate_down_through_and_up(&db, "m20261207_000013_authenticator_documents").await;
    assert_eq!(documents(&db).await, imported, "filled by the migration");
    db.close().await.ok();
    database.drop().await;
}

#[tokio::test]
async fn sqlite() {
    every_writer_writes_the_same_document(Backend::Sqlite).await;
}

#[tokio::test]
async fn postgres() {
    every_writer_writes_the_same_document(Backend::Postgres).await;
}
