//! Tenants through the real gRPC and HTTP interfaces, on SQLite and PostgreSQL: an
//! organization's token cannot squat instance-wide usernames, organizations hold the same
//! organization-specific usernames and IdP links, no number an organization sees counts
//! another organization's writes, and every event records who acted.

use crate::common;

use common::api;
use common::http as h;
use common::{Backend, Clients, FreshDatabase, TestApp};
use migration::MigratorTrait;
use reqwest::Method;
use sea_orm::{ConnectionTrait, Statement};
use serde_json::json;
use tonic::Code;
use userdir::proto::user::v1 as pb;

backend_tests!(
    organization_tokens_add_only_organization_specific_usernames,
    organizations_hold_the_same_usernames_and_idp_links,
    sequences_of_an_organization_never_count_other_organizations,
    a_shared_role_does_not_move_when_another_tenant_assigns_it,
    events_record_who_acted,
);

mod migration_fills_existing_rows {
    #[tokio::test]
    async fn sqlite() {
        super::migration_fills_existing_rows(super::common::Backend::Sqlite).await;
    }
    #[tokio::test]
    async fn postgres() {
        super::migration_fills_existing_rows(super::common::Backend::Postgres).await;
    }
}

/// A token limited to `organization` with every permission a tenant uses here.
async fn tenant(app: &TestApp, organization: &str) -> (String, String) {
    let minted = app
        .tokens
        .clone()
        .create_access_token(pb::CreateAccessTokenRequest {
            description: "tenant".into(),
            admin: false,
            permissions: ["user.read", "user.write", "role.read", "role.write"]
                .map(str::to_owned)
                .into(),
            organization_id: Some(organization.to_owned()),
            expiration_date: None,
        })
        .await
        .expect("CreateAccessToken")
        .into_inner();
    (minted.token_id, minted.token)
}

fn user_named(
    org: &str,
    schema: &str,
    name: &str,
    organization_specific: bool,
) -> pb::CreateUserRequest {
    let mut request = api::new_user(org, schema, name);
    request.usernames[0].is_organization_specific = organization_specific;
    request
}

async fn create(clients: &Clients, request: pb::CreateUserRequest) -> pb::CreateUserResponse {
    clients
        .users
        .clone()
        .create_user(request)
        .await
        .expect("CreateUser")
        .into_inner()
}

/// The user `id` as `clients` read it.
async fn get_user_as(clients: &Clients, id: &str) -> pb::User {
    api::get_user_with(&clients.users, id).await
}

async fn processed(clients: &Clients) -> pb::ListDetails {
    clients
        .users
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .details
        .unwrap()
}

async fn organization_tokens_add_only_organization_specific_usernames(app: TestApp) {
    let a = api::organization(&app, "A").await;
    let schema = api::person_schema(&app, "person").await;
    let (_, token) = tenant(&app, &a).await;
    let scoped = app.clients(Some(&token));

    let refused = scoped
        .users
        .clone()
        .create_user(user_named(&a, &schema, "root", false))
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("usernames[0].isOrganizationSpecific: "),
        "{refused:?}"
    );
    let id = create(&scoped, user_named(&a, &schema, "root", true))
        .await
        .user_id;
    let refused = scoped
        .users
        .clone()
        .add_username(pb::AddUsernameRequest {
            user_id: id.clone(),
            username: Some(pb::SetUsername {
                username: "admin".into(),
                is_organization_specific: false,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::PermissionDenied, "{refused:?}");
    assert!(
        refused
            .message()
            .starts_with("username.isOrganizationSpecific: "),
        "{refused:?}"
    );

    // The same over HTTP/JSON.
    let body = json!({
        "organizationId": a,
        "schemaId": schema,
        "data": {"givenName": "x"},
        "usernames": [{"username": "support", "isOrganizationSpecific": false}],
    });
    let reply = h::send_as(
        &reqwest::Client::new(),
        &app,
        Some(&token),
        Method::POST,
        "/v1/users",
        Some(body.to_string().as_bytes()),
    )
    .await;
    assert_eq!(reply.status, 403, "{:?}", reply.json);

    // Nothing of it was written; an instance-wide token still may.
    let names: Vec<String> = api::get_user(&app, &id)
        .await
        .authenticators
        .unwrap()
        .usernames
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["root"]);
    app.users
        .clone()
        .add_username(pb::AddUsernameRequest {
            user_id: id,
            username: Some(pb::SetUsername {
                username: "admin".into(),
                is_organization_specific: false,
            }),
        })
        .await
        .unwrap();
}

async fn organizations_hold_the_same_usernames_and_idp_links(app: TestApp) {
    let a = api::organization(&app, "A").await;
    let b = api::organization(&app, "B").await;
    let schema = api::person_schema(&app, "person").await;
    let (_, token_a) = tenant(&app, &a).await;
    let (_, token_b) = tenant(&app, &b).await;
    let link = |user_id: &str| pb::AddIdpLinkRequest {
        user_id: user_id.into(),
        idp_id: "github".into(),
        idp_name: "GitHub".into(),
        linked_user_id: "42".into(),
        linked_username: "octocat".into(),
    };
    let mut users = Vec::new();
    for (org, token) in [(&a, &token_a), (&b, &token_b)] {
        let scoped = app.clients(Some(token));
        let id = create(&scoped, user_named(org, &schema, "alice", true))
            .await
            .user_id;
        scoped.users.clone().add_idp_link(link(&id)).await.unwrap();
        users.push((scoped, id));
    }
    // Within one organization both stay unique.
    let (scoped_a, alice_a) = &users[0];
    let taken = scoped_a
        .users
        .clone()
        .create_user(user_named(&a, &schema, "ALICE", true))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    let other = create(scoped_a, user_named(&a, &schema, "bob", true))
        .await
        .user_id;
    let taken = scoped_a
        .users
        .clone()
        .add_idp_link(link(&other))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists, "{taken:?}");
    for (_, id) in &users {
        let user = api::get_user(&app, id).await;
        let authenticators = user.authenticators.unwrap();
        assert_eq!(authenticators.usernames[0].username, "alice");
        assert_eq!(authenticators.identity_providers[0].user_id, "42");
    }
    assert_ne!(alice_a, &users[1].1);
}

async fn sequences_of_an_organization_never_count_other_organizations(app: TestApp) {
    let a = api::organization(&app, "A").await;
    let b = api::organization(&app, "B").await;
    let schema = api::person_schema(&app, "person").await;
    let (_, token_a) = tenant(&app, &a).await;
    let (_, token_b) = tenant(&app, &b).await;
    let (scoped_a, scoped_b) = (app.clients(Some(&token_a)), app.clients(Some(&token_b)));

    let created = create(&scoped_a, user_named(&a, &schema, "ann", true)).await;
    let first = created.details.unwrap();
    let seen_a = processed(&scoped_a).await;
    assert_eq!(seen_a.processed_sequence, first.sequence);
    assert_eq!(seen_a.timestamp, first.change_date);
    let user_a = get_user_as(&scoped_a, &created.user_id).await;

    // Organization B writes; the instance moves, A's numbers do not.
    let instance_before = api::processed_sequence(&app).await;
    for name in ["bea", "ben", "bo"] {
        create(&scoped_b, user_named(&b, &schema, name, true)).await;
    }
    assert_eq!(api::processed_sequence(&app).await, instance_before + 3);
    assert_eq!(processed(&scoped_a).await, seen_a);
    let again = get_user_as(&scoped_a, &created.user_id).await;
    assert_eq!(again, user_a);

    // A's next write is the next number of A's stream, not of the instance.
    let locked = scoped_a
        .users
        .clone()
        .lock_user(pb::LockUserRequest {
            user_id: created.user_id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .details
        .unwrap();
    assert_eq!(locked.sequence, first.sequence + 1);
    assert_eq!(
        processed(&scoped_a).await.processed_sequence,
        locked.sequence
    );
    // The same user read instance-wide shows the instance sequence.
    assert_eq!(
        api::get_user(&app, &created.user_id)
            .await
            .details
            .unwrap()
            .sequence,
        instance_before + 4
    );

    // A key's sequence too: A's stream for A (GetUser and a page alike), the instance's
    // instance-wide, although the user's authenticator document holds one of them.
    let key = scoped_a
        .users
        .clone()
        .add_authentication_key(pb::AddAuthenticationKeyRequest {
            user_id: created.user_id.clone(),
            expiration_date: None,
        })
        .await
        .unwrap()
        .into_inner()
        .details
        .unwrap();
    assert_eq!(key.sequence, locked.sequence + 1);
    let key_sequences = |user: pb::User| -> Vec<u64> {
        user.authenticators
            .unwrap()
            .authentication_keys
            .into_iter()
            .map(|key| key.details.unwrap().sequence)
            .collect()
    };
    let got_by_a = get_user_as(&scoped_a, &created.user_id).await;
    assert_eq!(key_sequences(got_by_a), [key.sequence]);
    let listed_by_a = scoped_a
        .users
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .result;
    assert_eq!(listed_by_a.len(), 1);
    assert_eq!(
        key_sequences(listed_by_a.into_iter().next().unwrap()),
        [key.sequence]
    );
    let got_instance_wide = api::get_user(&app, &created.user_id).await;
    assert_eq!(key_sequences(got_instance_wide), [instance_before + 5]);
}

async fn a_shared_role_does_not_move_when_another_tenant_assigns_it(app: TestApp) {
    let a = api::organization(&app, "A").await;
    let b = api::organization(&app, "B").await;
    let schema = api::person_schema(&app, "person").await;
    let (_, token_a) = tenant(&app, &a).await;
    let (_, token_b) = tenant(&app, &b).await;
    let (scoped_a, scoped_b) = (app.clients(Some(&token_a)), app.clients(Some(&token_b)));
    let role = app
        .roles
        .clone()
        .create_role(pb::CreateRoleRequest {
            name: "support".into(),
            description: "shared by every tenant".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .role_id;
    let user_a = create(&scoped_a, user_named(&a, &schema, "ann", true))
        .await
        .user_id;
    let user_b = create(&scoped_b, user_named(&b, &schema, "bea", true))
        .await
        .user_id;
    let role_as_seen = |clients: &Clients| {
        let mut roles = clients.roles.clone();
        let role = role.clone();
        async move {
            let got = roles
                .get_role(pb::GetRoleRequest {
                    role_id: role.clone(),
                })
                .await
                .unwrap()
                .into_inner()
                .role
                .unwrap();
            let listed = roles
                .list_roles(pb::ListRolesRequest::default())
                .await
                .unwrap()
                .into_inner();
            assert_eq!(listed.result, std::slice::from_ref(&got));
            (got, listed.details.unwrap())
        }
    };
    let (role_before, list_before) = role_as_seen(&scoped_a).await;
    let assign = |user: &str| pb::AssignRoleRequest {
        role_id: role.clone(),
        user_ids: vec![user.to_owned()],
    };

    scoped_b
        .roles
        .clone()
        .assign_role(assign(&user_b))
        .await
        .unwrap();
    scoped_b
        .roles
        .clone()
        .unassign_role(pb::UnassignRoleRequest {
            role_id: role.clone(),
            user_id: user_b.clone(),
        })
        .await
        .unwrap();
    app.roles
        .clone()
        .assign_role(assign(&user_b))
        .await
        .unwrap();
    let (role_after, list_after) = role_as_seen(&scoped_a).await;
    assert_eq!(role_after, role_before);
    assert_eq!(
        list_after.processed_sequence,
        list_before.processed_sequence
    );
    assert_eq!(list_after.timestamp, list_before.timestamp);

    // A's own assignment is the next event of A's stream, and leaves the role alone too.
    let assigned = scoped_a
        .roles
        .clone()
        .assign_role(assign(&user_a))
        .await
        .unwrap()
        .into_inner()
        .details
        .unwrap();
    assert_eq!(assigned.sequence, list_before.processed_sequence + 1);
    assert_eq!(role_as_seen(&scoped_a).await.0, role_before);
}

/// `(event_type, actor, organization_id, organization_sequence)` of every event, in order.
async fn events(app: &TestApp) -> Vec<(String, String, Option<String>, Option<i64>)> {
    app.db
        .query_all_raw(Statement::from_string(
            app.db.get_database_backend(),
            "SELECT event_type, actor, organization_id, organization_sequence \
             FROM events ORDER BY sequence",
        ))
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            (
                row.try_get("", "event_type").unwrap(),
                row.try_get("", "actor").unwrap(),
                row.try_get("", "organization_id").unwrap(),
                row.try_get("", "organization_sequence").unwrap(),
            )
        })
        .collect()
}

async fn events_record_who_acted(app: TestApp) {
    let admin_id = app
        .tokens
        .clone()
        .list_access_tokens(pb::ListAccessTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .result[0]
        .token_id
        .clone();
    let admin = format!("token:{admin_id}");
    let a = api::organization(&app, "A").await;
    let schema = api::person_schema(&app, "person").await;
    let (tenant_id, token) = tenant(&app, &a).await;
    let scoped = app.clients(Some(&token));
    let user = create(&scoped, user_named(&a, &schema, "ann", true))
        .await
        .user_id;
    // Over HTTP/JSON as well.
    let reply = h::send_as(
        &reqwest::Client::new(),
        &app,
        Some(&token),
        Method::POST,
        &format!("/v1/users/{user}/lock"),
        Some(b"{}"),
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.json);
    app.tokens
        .clone()
        .revoke_access_token(pb::RevokeAccessTokenRequest {
            token_id: tenant_id.clone(),
        })
        .await
        .unwrap();

    let tenant = format!("token:{tenant_id}");
    let a = Some(a);
    assert_eq!(
        events(&app).await,
        [
            ("access_token.added".into(), "bootstrap".into(), None, None),
            (
                "organization.added".into(),
                admin.clone(),
                a.clone(),
                Some(1)
            ),
            ("user_schema.created".into(), admin.clone(), None, None),
            (
                "access_token.added".into(),
                admin.clone(),
                a.clone(),
                Some(2)
            ),
            ("user.created".into(), tenant.clone(), a.clone(), Some(3)),
            ("user.locked".into(), tenant, a.clone(), Some(4)),
            ("access_token.revoked".into(), admin, a, Some(5)),
        ]
    );
}

/// Migration 6 on a directory written before it: links get their user's organization, events
/// their organization and gapless positions in it.
async fn migration_fills_existing_rows(backend: Backend) {
    userdir::telemetry::init();
    let Some(database) = FreshDatabase::create(backend).await else {
        return;
    };
    let db = userdir::store::connect(&database.url).await.unwrap();
    migration::Migrator::up(&db, Some(4)).await.unwrap();
    let run = |sql: &str| {
        let db = db.clone();
        let sql = sql.to_owned();
        async move {
            db.execute_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap();
        }
    };
    for org in ["a", "b"] {
        run(&format!(
            "INSERT INTO organizations VALUES ('{org}', '{org}', '{org}', 1, 1, 1)"
        ))
        .await;
    }
    run("INSERT INTO user_schemas VALUES ('s', 'p', 'p', 1, '{}', 1, 1, 1)").await;
    run("INSERT INTO user_schema_revisions VALUES ('s', 1, 'p', '{}', 1)").await;
    for (user, org) in [("u1", "a"), ("u2", "b")] {
        run(&format!(
            "INSERT INTO users (id, organization_id, schema_id, schema_revision, schema_type, \
             schema_type_lower, data, state, created_at, changed_at, sequence) \
             VALUES ('{user}', '{org}', 's', 1, 'p', 'p', '{{}}', 1, 1, 1, 1)"
        ))
        .await;
        run(&format!(
            "INSERT INTO idp_links VALUES ('l{user}', '{user}', 'github', 'GitHub', '{user}', 'x', 1)"
        ))
        .await;
    }
    for (sequence, owner) in [(1, "a"), (2, "b"), (3, ""), (4, "a"), (5, "b"), (6, "a")] {
        run(&format!(
            "INSERT INTO events VALUES ({sequence}, 1, 'x', 'x', '{owner}', 'x', '{{}}')"
        ))
        .await;
    }
    userdir::store::migrate(&db).await.unwrap();

    let rows = |sql: &str| {
        let db = db.clone();
        let sql = sql.to_owned();
        async move {
            db.query_all_raw(Statement::from_string(db.get_database_backend(), sql))
                .await
                .unwrap()
        }
    };
    let links: Vec<(String, String)> =
        rows("SELECT id, organization_id FROM idp_links ORDER BY id")
            .await
            .into_iter()
            .map(|r| {
                (
                    r.try_get("", "id").unwrap(),
                    r.try_get("", "organization_id").unwrap(),
                )
            })
            .collect();
    assert_eq!(
        links,
        [("lu1".into(), "a".into()), ("lu2".into(), "b".into())]
    );
    let events: Vec<(Option<String>, Option<i64>, String)> =
        rows("SELECT organization_id, organization_sequence, actor FROM events ORDER BY sequence")
            .await
            .into_iter()
            .map(|r| {
                (
                    r.try_get("", "organization_id").unwrap(),
                    r.try_get("", "organization_sequence").unwrap(),
                    r.try_get("", "actor").unwrap(),
                )
            })
            .collect();
    let a = || Some("a".to_owned());
    let b = || Some("b".to_owned());
    assert_eq!(
        events,
        [
            (a(), Some(1), String::new()),
            (b(), Some(1), String::new()),
            (None, None, String::new()),
            (a(), Some(2), String::new()),
            (b(), Some(2), String::new()),
            (a(), Some(3), String::new()),
        ]
    );
    // It also rolls back, and applies again.
    common::migrate_down_through_and_up(&db, "m20261201_000006_tenant_uniqueness").await;
    db.close().await.unwrap();
    database.drop().await;
}
