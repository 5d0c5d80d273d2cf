//! GetUser and the full user shape, plus the services every deployment expects (health,
//! reflection), through the real gRPC interface on SQLite and PostgreSQL.

use crate::common;

use common::TestApp;
use common::fixtures::{self, NewUser, ORG_B};
use prost_types::{Struct, Timestamp, Value, value::Kind};
use tonic::Code;
use userdir::proto::user::v1 as pb;

backend_tests!(
    get_user_returns_every_part_of_the_user,
    get_user_of_a_missing_or_invalid_id_is_refused,
    list_and_get_return_the_same_user,
    health_and_reflection_are_served,
);

fn time(micros: i64) -> Option<Timestamp> {
    Some(Timestamp {
        seconds: micros.div_euclid(1_000_000),
        nanos: (micros.rem_euclid(1_000_000) * 1000) as i32,
    })
}

async fn get_user_returns_every_part_of_the_user(app: TestApp) {
    fixtures::base(&app.db).await;
    let user = NewUser::new(7)
        .org(ORG_B)
        .email("Gigi@Example.com")
        .phone("+41791234567")
        .username("gigi", true)
        .every_authenticator()
        .last_login(1_700_000_123_000_000);
    let id = user.id();
    let row = user.build();
    let created = row.user.created_at;
    userdir::store::writes::import::import_users(&app.db, vec![row])
        .await
        .unwrap();

    let got = app
        .users
        .clone()
        .get_user(pb::GetUserRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .user
        .unwrap();
    let expected = pb::User {
        user_id: id.clone(),
        details: Some(pb::Details {
            // The bootstrap token's event is the first (1); the fixtures write 2 to 6.
            sequence: 6,
            change_date: time(created),
            resource_owner: ORG_B.into(),
        }),
        authenticators: Some(pb::Authenticators {
            usernames: vec![
                pb::Username {
                    username_id: format!("{id}-u0"),
                    username: "user7".into(),
                    is_organization_specific: false,
                },
                pb::Username {
                    username_id: format!("{id}-u1"),
                    username: "gigi".into(),
                    is_organization_specific: true,
                },
            ],
            password: Some(pb::Password {
                last_changed: time(created + 10),
            }),
            web_auth_n: vec![pb::WebAuthN {
                web_auth_n_id: format!("{id}-w"),
                name: "YubiKey".into(),
                is_verified: true,
                user_verified: true,
            }],
            totps: vec![pb::Totp {
                totp_id: format!("{id}-t"),
                name: "Phone app".into(),
                is_verified: false,
            }],
            otp_sms: vec![pb::Otpsms {
                otp_sms_id: format!("{id}-s"),
                phone: "+41790000000".into(),
                is_verified: true,
            }],
            otp_email: vec![pb::OtpEmail {
                otp_email_id: format!("{id}-e"),
                address: "otp@example.com".into(),
                is_verified: false,
            }],
            authentication_keys: vec![pb::AuthenticationKey {
                authentication_key_id: format!("{id}-k"),
                details: Some(pb::Details {
                    sequence: 6,
                    change_date: time(created + 20),
                    resource_owner: ORG_B.into(),
                }),
                r#type: pb::AuthNKeyType::AuthnKeyTypeJson.into(),
                expiration_date: time(created + 1_000_000),
            }],
            identity_providers: vec![pb::IdentityProvider {
                idp_id: "github".into(),
                idp_name: "GitHub".into(),
                user_id: format!("ext-{id}"),
                username: "octocat".into(),
            }],
        }),
        contact: Some(pb::Contact {
            email: Some(pb::Email {
                address: "Gigi@Example.com".into(),
                is_verified: false,
            }),
            phone: Some(pb::Phone {
                number: "+41791234567".into(),
                is_verified: false,
            }),
        }),
        state: pb::State::UserStateActive.into(),
        schema: Some(pb::Schema {
            id: fixtures::EMPLOYEE.into(),
            r#type: "Employee".into(),
            revision: 1,
        }),
        data: Some(Struct {
            fields: [(
                "n".to_string(),
                Value {
                    kind: Some(Kind::NumberValue(7.0)),
                },
            )]
            .into(),
        }),
        last_login: time(1_700_000_123_000_000),
    };
    assert_eq!(got, expected);
}

async fn get_user_of_a_missing_or_invalid_id_is_refused(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(&app.db, vec![NewUser::new(1)]).await;
    let mut client = app.users.clone();
    let missing = client
        .get_user(pb::GetUserRequest {
            user_id: fixtures::user_id(2),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
    assert!(
        missing.message().starts_with("userId: no user with id"),
        "{}",
        missing.message()
    );
    let upper = client
        .get_user(pb::GetUserRequest {
            user_id: fixtures::user_id(1).to_uppercase(),
        })
        .await
        .unwrap_err();
    assert_eq!(upper.code(), Code::NotFound, "ids are exact");
    let empty = client
        .get_user(pb::GetUserRequest {
            user_id: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (empty.code(), empty.message()),
        (Code::InvalidArgument, "userId: must not be empty")
    );
    let long = client
        .get_user(pb::GetUserRequest {
            user_id: "x".repeat(201),
        })
        .await
        .unwrap_err();
    assert_eq!(long.code(), Code::InvalidArgument);
}

async fn list_and_get_return_the_same_user(app: TestApp) {
    fixtures::base(&app.db).await;
    fixtures::insert(
        &app.db,
        (1..=3)
            .map(|n| {
                NewUser::new(n)
                    .every_authenticator()
                    .email(&format!("u{n}@x.io"))
            })
            .collect(),
    )
    .await;
    let listed = app
        .users
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.result.len(), 3);
    for user in listed.result {
        let got = app
            .users
            .clone()
            .get_user(pb::GetUserRequest {
                user_id: user.user_id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert_eq!(got, user);
    }
}

async fn health_and_reflection_are_served(app: TestApp) {
    use tonic_health::pb::{
        HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
    };
    let channel = tonic::transport::Channel::from_shared(format!("http://{}", app.address))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut health = HealthClient::new(channel.clone());
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(overall.into_inner().status(), ServingStatus::Serving);
    let users = health
        .check(HealthCheckRequest {
            service: "userdir.user.v1.UserService".into(),
        })
        .await
        .unwrap();
    assert_eq!(users.into_inner().status(), ServingStatus::Serving);

    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
        server_reflection_request::MessageRequest, server_reflection_response::MessageResponse,
    };
    let mut reflection = ServerReflectionClient::new(channel);
    let request = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    let mut stream = reflection
        .server_reflection_info(tokio_stream::iter([request]))
        .await
        .unwrap()
        .into_inner();
    let Some(MessageResponse::ListServicesResponse(list)) =
        stream.message().await.unwrap().unwrap().message_response
    else {
        panic!("expected a service list");
    };
    let mut names: Vec<String> = list.service.into_iter().map(|s| s.name).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1.ServerReflection",
            "userdir.user.v1.OrganizationService",
            "userdir.user.v1.RoleService",
            "userdir.user.v1.TokenService",
            "userdir.user.v1.UserSchemaService",
            "userdir.user.v1.UserService",
        ]
    );
}
