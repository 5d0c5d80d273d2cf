//! The same seeded directory answers identically on SQLite and PostgreSQL, and seeding is
//! deterministic whatever the batch size.

use crate::common;

use common::queries::{self as q, M};
use common::{Backend, FreshDatabase};
use tonic::transport::Channel;
use userdir::config::Settings;
use userdir::proto::user::v1::user_service_client::UserServiceClient;
use userdir::proto::user::v1::{self as pb, FieldName};
use userdir::seed::{self, SeedOptions};
use userdir::startup::Application;
use userdir::store;

const USERS: u64 = 400;

struct Seeded {
    client: UserServiceClient<common::Authed>,
    database: FreshDatabase,
    /// Dropped with the rest, which stops the server (and its health probe).
    _running: tokio::sync::oneshot::Sender<()>,
}

async fn seeded(backend: Backend, batch_size: usize) -> Option<Seeded> {
    let database = FreshDatabase::create(backend).await?;
    let db = store::connect(&database.url).await.unwrap();
    store::migrate(&db).await.unwrap();
    // The bootstrap token's event carries the wall-clock time; minting it before seeding keeps
    // the seeded events the newest, so `details` can agree between the backends.
    let bootstrap = userdir::command::tokens::bootstrap(&store::ScopedDb::instance(db.clone()))
        .await
        .unwrap()
        .expect("a fresh directory");
    let token = bootstrap.secret().to_owned();
    bootstrap.commit().await.unwrap();
    seed::run(
        &db,
        SeedOptions {
            users: USERS,
            seed: 42,
            batch_size,
            progress: false,
        },
    )
    .await
    .unwrap();
    let app = Application::with_database(db, "127.0.0.1:0".parse().unwrap(), Settings::default())
        .await
        .unwrap();
    let address = app.local_addr().unwrap();
    let (running, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(app.run_until(async move {
        let _ = stopped.await;
    }));
    let channel = Channel::from_shared(format!("http://{address}"))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let client = common::Clients::new(channel, Some(&token)).users;
    Some(Seeded {
        client,
        database,
        _running: running,
    })
}

/// Requests covering every sorting column in both directions and every query kind.
fn requests() -> Vec<pb::ListUsersRequest> {
    let columns = [
        FieldName::Unspecified,
        FieldName::Id,
        FieldName::CreationDate,
        FieldName::ChangeDate,
        FieldName::Email,
        FieldName::Phone,
        FieldName::State,
        FieldName::SchemaId,
        FieldName::SchemaType,
    ];
    let mut requests = Vec::new();
    for column in columns {
        for asc in [true, false] {
            for offset in [0, 37, 390] {
                requests.push(q::request(vec![], offset, 50, asc, column));
            }
        }
    }
    let queries = vec![
        vec![q::email("ZOE", M::StartsWithIgnoreCase)],
        vec![q::email("Zoe", M::StartsWith)],
        vec![
            q::email(".example", M::EndsWith),
            q::not(q::phone("+417", M::StartsWith)),
        ],
        vec![q::username("ö", M::ContainsIgnoreCase, None)],
        vec![q::username("1", M::EndsWith, Some(true))],
        vec![q::or(vec![
            q::state(pb::State::UserStateLocked),
            q::and(vec![
                q::schema_type("SERVICE", M::StartsWithIgnoreCase),
                q::not(q::email("", M::Contains)),
            ]),
        ])],
        vec![q::not(q::state(pb::State::UserStateActive))],
    ];
    for queries in queries {
        for column in [FieldName::Email, FieldName::Phone, FieldName::SchemaType] {
            requests.push(q::request(queries.clone(), 0, 1000, false, column));
        }
    }
    requests
}

/// Everything but the response timestamp of the server's clock... which is the latest event's
/// time, so the whole response must agree. Page tokens are signed with each database's own
/// key, so a token is compared by the page it leads to (the second list, one answer per
/// request that has a next page) and stands in the answer only as "there is a next page".
async fn answers(seeded: &mut Seeded) -> (Vec<pb::ListUsersResponse>, Vec<pb::ListUsersResponse>) {
    let mut answers = Vec::new();
    let mut next_pages = Vec::new();
    for request in requests() {
        let mut answer = seeded
            .client
            .list_users(request.clone())
            .await
            .unwrap()
            .into_inner();
        let details = answer.details.as_mut().unwrap();
        let token = std::mem::take(&mut details.next_page_token);
        if token.is_empty() {
            answers.push(answer);
            continue;
        }
        details.next_page_token = "a next page".into();
        answers.push(answer);
        let mut next = request;
        let page = next.query.get_or_insert_with(Default::default);
        page.page_token = token;
        page.offset = 0;
        let mut answer = seeded.client.list_users(next).await.unwrap().into_inner();
        let details = answer.details.as_mut().unwrap();
        if !details.next_page_token.is_empty() {
            details.next_page_token = "a next page".into();
        }
        next_pages.push(answer);
    }
    (answers, next_pages)
}

#[tokio::test]
async fn seeded_directories_answer_identically_on_both_backends() {
    let Some(mut sqlite) = seeded(Backend::Sqlite, 1000).await else {
        return;
    };
    let Some(mut postgres) = seeded(Backend::Postgres, 1000).await else {
        return;
    };
    let ((a, a_next), (b, b_next)) = (answers(&mut sqlite).await, answers(&mut postgres).await);
    for (i, (left, right)) in a.iter().zip(&b).enumerate() {
        assert_eq!(
            left, right,
            "request {i} differs between SQLite and PostgreSQL"
        );
    }
    assert!(!a_next.is_empty(), "some answers have a next page");
    for (i, (left, right)) in a_next.iter().zip(&b_next).enumerate() {
        assert_eq!(
            left, right,
            "the page after token {i} differs between SQLite and PostgreSQL"
        );
    }
    assert!(
        a.iter().any(|r| r.result.len() == 50),
        "the directory was seeded"
    );
    assert!(
        a.iter()
            .skip(54)
            .all(|r| r.details.as_ref().unwrap().total_result < USERS),
        "queries filter"
    );
    sqlite.database.drop().await;
    postgres.database.drop().await;
}

#[tokio::test]
async fn seeding_does_not_depend_on_the_batch_size() {
    let Some(mut whole) = seeded(Backend::Sqlite, 1000).await else {
        return;
    };
    let Some(mut batched) = seeded(Backend::Sqlite, 7).await else {
        return;
    };
    let ((a, _), (b, _)) = (answers(&mut whole).await, answers(&mut batched).await);
    for (i, (left, right)) in a.iter().zip(&b).enumerate() {
        // Sequences differ (one event batch vs many), nothing else may.
        let strip = |r: &pb::ListUsersResponse| {
            r.result
                .iter()
                .map(|u| {
                    (
                        u.user_id.clone(),
                        u.contact.clone(),
                        u.authenticators.as_ref().map(|a| a.usernames.clone()),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(strip(left), strip(right), "request {i}");
    }
}
