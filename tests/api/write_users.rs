//! Users through the write API, on SQLite and PostgreSQL: create, patch, schemas and their
//! revisions, lifecycle states, delete, uniqueness, contact verification, atomicity.

use crate::common;

use common::TestApp;
use common::api::{self, object};
use serde_json::json;
use tonic::Code;
use userdir::proto::user::v1 as pb;
use userdir::store::entities::verification_code;

backend_tests!(
    a_created_user_reads_back_with_everything,
    bad_data_and_missing_references_are_refused_by_field,
    schema_updates_make_revisions,
    state_changes_follow_the_lifecycle,
    delete_removes_the_user_and_frees_its_usernames,
    concurrent_creates_of_one_username_have_one_winner,
    nothing_is_half_written_after_an_error,
    contact_codes_verify_once_and_limit_guesses,
);

async fn setup(app: &TestApp) -> (String, String) {
    (
        api::organization(app, "Acme").await,
        api::person_schema(app, "person").await,
    )
}

async fn a_created_user_reads_back_with_everything(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let before = api::processed_sequence(&app).await;
    let mut request = api::new_user(&org, &schema, "Gigi");
    request.data = Some(object(json!({"givenName": "Gigi", "age": 7})));
    request.usernames.push(pb::SetUsername {
        username: "gigi-giraffe".into(),
        is_organization_specific: true,
    });
    request.contact = Some(pb::SetContact {
        email: Some(pb::SetEmail {
            address: "Gigi@Example.com".into(),
            verification: Some(pb::set_email::Verification::ReturnCode(
                pb::ReturnVerificationCode {},
            )),
        }),
        phone: Some(pb::SetPhone {
            number: "+41 79 123 45 67".into(),
            verification: Some(pb::set_phone::Verification::IsVerified(true)),
        }),
    });
    request.password = Some(pb::SetPassword {
        r#type: Some(pb::set_password::Type::Password(
            "correct horse battery".into(),
        )),
        change_required: false,
    });
    let created = app
        .users
        .clone()
        .create_user(request)
        .await
        .unwrap()
        .into_inner();
    assert!(
        created.email_code.as_ref().is_some_and(|c| c.len() == 8),
        "the email code is returned"
    );
    assert_eq!(created.phone_code, None, "a verified phone needs no code");
    let details = created.details.unwrap();
    assert_eq!(details.sequence, before + 1);
    assert_eq!(details.resource_owner, org);

    let user = api::get_user(&app, &created.user_id).await;
    assert_eq!(user.state, pb::State::UserStateActive as i32);
    assert_eq!(user.details.as_ref().unwrap().sequence, before + 1);
    assert_eq!(
        api::json_of(user.data.as_ref().unwrap()),
        json!({"givenName": "Gigi", "age": 7})
    );
    let schema_ref = user.schema.unwrap();
    assert_eq!(
        (
            schema_ref.id.as_str(),
            schema_ref.r#type.as_str(),
            schema_ref.revision
        ),
        (schema.as_str(), "person", 1)
    );
    let contact = user.contact.unwrap();
    assert_eq!(
        contact.email,
        Some(pb::Email {
            address: "Gigi@Example.com".into(),
            is_verified: false
        })
    );
    assert_eq!(
        contact.phone,
        Some(pb::Phone {
            number: "+41 79 123 45 67".into(),
            is_verified: true
        })
    );
    let auth = user.authenticators.unwrap();
    let names: Vec<(String, bool)> = auth
        .usernames
        .iter()
        .map(|u| (u.username.clone(), u.is_organization_specific))
        .collect();
    assert_eq!(
        names,
        [
            ("Gigi".to_string(), false),
            ("gigi-giraffe".to_string(), true)
        ]
    );
    assert!(auth.password.is_some());
    assert_eq!(api::processed_sequence(&app).await, before + 1);

    // The new user is found by the query engine at once.
    let found = app
        .users
        .clone()
        .list_users(common::queries::matching(vec![common::queries::email(
            "gigi@",
            common::queries::M::StartsWithIgnoreCase,
        )]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(found.result.len(), 1);
    assert_eq!(found.result[0].user_id, created.user_id);
}

async fn bad_data_and_missing_references_are_refused_by_field(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let mut users = app.users.clone();
    let cases: Vec<(pb::CreateUserRequest, Code, &str)> = vec![
        (
            {
                let mut r = api::new_user(&org, &schema, "a");
                r.data = Some(object(json!({"givenName": "a", "age": -1})));
                r
            },
            Code::InvalidArgument,
            "data.age: ",
        ),
        (
            {
                let mut r = api::new_user(&org, &schema, "a");
                r.data = Some(object(json!({"age": 3})));
                r
            },
            Code::InvalidArgument,
            "data: ",
        ),
        (
            {
                let mut r = api::new_user(&org, &schema, "a");
                r.data = Some(object(json!({"givenName": "a", "extra": true})));
                r
            },
            Code::InvalidArgument,
            "data: ",
        ),
        (
            api::new_user("no-such-org", &schema, "a"),
            Code::NotFound,
            "organizationId: ",
        ),
        (
            api::new_user(&org, "no-such-schema", "a"),
            Code::NotFound,
            "schemaId: ",
        ),
        (
            api::new_user("", &schema, "a"),
            Code::InvalidArgument,
            "organizationId: must not be empty",
        ),
        (
            api::new_user(&org, &schema, ""),
            Code::InvalidArgument,
            "usernames[0].username: must not be empty",
        ),
        (
            {
                let mut r = api::new_user(&org, &schema, "a");
                r.contact = Some(pb::SetContact {
                    email: Some(pb::SetEmail {
                        address: "not-an-address".into(),
                        verification: None,
                    }),
                    phone: None,
                });
                r
            },
            Code::InvalidArgument,
            "contact.email.address: is not an email address",
        ),
        (
            {
                let mut r = api::new_user(&org, &schema, "a");
                r.contact = Some(pb::SetContact {
                    email: None,
                    phone: Some(pb::SetPhone {
                        number: "call me".into(),
                        verification: None,
                    }),
                });
                r
            },
            Code::InvalidArgument,
            "contact.phone.number: ",
        ),
        (
            {
                let mut r = api::new_user(&org, &schema, "a");
                r.password = Some(pb::SetPassword {
                    r#type: Some(pb::set_password::Type::Password("short".into())),
                    change_required: false,
                });
                r
            },
            Code::InvalidArgument,
            "password.password: must be at least 8 characters",
        ),
        (
            {
                let mut r = api::new_user(&org, &schema, "a");
                r.password = Some(pb::SetPassword {
                    r#type: Some(pb::set_password::Type::Hash("md5:abc".into())),
                    change_required: false,
                });
                r
            },
            Code::InvalidArgument,
            "password.hash: ",
        ),
    ];
    for (request, code, prefix) in cases {
        let status = users.create_user(request).await.unwrap_err();
        assert_eq!(status.code(), code, "{prefix}: {}", status.message());
        assert!(
            status.message().starts_with(prefix),
            "{:?} should start with {prefix:?}",
            status.message()
        );
    }
    assert_eq!(
        api::processed_sequence(&app).await,
        3,
        "only the bootstrap token, the organization and the schema were written"
    );
}

async fn schema_updates_make_revisions(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let id = api::create_user(&app, api::new_user(&org, &schema, "rev")).await;
    let updated = app
        .schemas
        .clone()
        .update_user_schema(pb::UpdateUserSchemaRequest {
            schema_id: schema.clone(),
            r#type: Some("Employee".into()),
            schema: Some(object(json!({"type": "object", "required": ["givenName", "team"], "properties": {"givenName": {"type": "string"}, "team": {"type": "string"}}}))),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(updated.revision, 2);
    // The user keeps the revision its data follows, but carries the new type for search.
    let user = api::get_user(&app, &id).await;
    let schema_ref = user.schema.unwrap();
    assert_eq!(
        (schema_ref.r#type.as_str(), schema_ref.revision),
        ("Employee", 1)
    );
    let by_type = app
        .users
        .clone()
        .list_users(common::queries::matching(vec![
            common::queries::schema_type("employee", common::queries::M::EqualsIgnoreCase),
        ]))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(by_type.result.len(), 1);
    // New data must follow the new revision.
    let refused = app
        .users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: id.clone(),
            data: Some(object(json!({"givenName": "rev"}))),
            contact: None,
        })
        .await
        .unwrap_err();
    assert!(
        refused.message().starts_with("data: "),
        "{}",
        refused.message()
    );
    app.users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: id.clone(),
            data: Some(object(json!({"givenName": "rev", "team": "core"}))),
            contact: None,
        })
        .await
        .unwrap();
    assert_eq!(api::get_user(&app, &id).await.schema.unwrap().revision, 2);
    let got = app
        .schemas
        .clone()
        .get_user_schema(pb::GetUserSchemaRequest {
            schema_id: schema.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .schema
        .unwrap();
    assert_eq!((got.r#type.as_str(), got.revision), ("Employee", 2));
    let duplicate = app
        .schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: "EMPLOYEE".into(),
            schema: Some(object(json!({"type": "object"}))),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);
    let invalid = app
        .schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: "broken".into(),
            schema: Some(object(json!({"type": "no-such-type"}))),
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    assert!(invalid.message().starts_with("schema: "));
}

async fn state_changes_follow_the_lifecycle(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let id = api::create_user(&app, api::new_user(&org, &schema, "state")).await;
    let mut users = app.users.clone();
    let state = |user: pb::User| user.state;
    let mut last = api::get_user(&app, &id).await.details.unwrap().sequence;
    let mut moved = |written: Option<pb::Details>| {
        let sequence = written.unwrap().sequence;
        assert!(sequence > last, "the sequence moves");
        last = sequence;
    };

    moved(
        users
            .deactivate_user(pb::DeactivateUserRequest {
                user_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .details,
    );
    assert_eq!(
        state(api::get_user(&app, &id).await),
        pb::State::UserStateInactive as i32
    );
    let again = users
        .deactivate_user(pb::DeactivateUserRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (again.code(), again.message()),
        (
            Code::FailedPrecondition,
            "userId: the user is already inactive"
        )
    );
    assert_eq!(
        users
            .lock_user(pb::LockUserRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    moved(
        users
            .reactivate_user(pb::ReactivateUserRequest {
                user_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .details,
    );
    assert_eq!(
        users
            .reactivate_user(pb::ReactivateUserRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    moved(
        users
            .lock_user(pb::LockUserRequest {
                user_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .details,
    );
    assert_eq!(
        state(api::get_user(&app, &id).await),
        pb::State::UserStateLocked as i32
    );
    assert_eq!(
        users
            .lock_user(pb::LockUserRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    moved(
        users
            .unlock_user(pb::UnlockUserRequest {
                user_id: id.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .details,
    );
    assert_eq!(
        users
            .unlock_user(pb::UnlockUserRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    assert_eq!(
        state(api::get_user(&app, &id).await),
        pb::State::UserStateActive as i32
    );
    let missing = users
        .lock_user(pb::LockUserRequest {
            user_id: "nobody".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);
}

async fn delete_removes_the_user_and_frees_its_usernames(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let id = api::create_user(&app, api::new_user(&org, &schema, "taken")).await;
    let mut users = app.users.clone();
    let clash = users
        .create_user(api::new_user(&org, &schema, "TAKEN"))
        .await
        .unwrap_err();
    assert_eq!(clash.code(), Code::AlreadyExists);
    let deleted = users
        .delete_user(pb::DeleteUserRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(deleted.details.unwrap().sequence > 0);
    assert_eq!(
        users
            .get_user(pb::GetUserRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    let listed = users
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.details.unwrap().total_result, 0);
    assert_eq!(
        users
            .delete_user(pb::DeleteUserRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    assert_eq!(
        users
            .lock_user(pb::LockUserRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
    // The username is free again.
    api::create_user(&app, api::new_user(&org, &schema, "Taken")).await;
}

async fn concurrent_creates_of_one_username_have_one_winner(app: TestApp) {
    let (org, schema) = setup(&app).await;
    let mut attempts = Vec::new();
    for i in 0..6 {
        let mut users = app.users.clone();
        let name = if i % 2 == 0 { "Race" } else { "rACE" };
        let request = api::new_user(&org, &schema, name);
        attempts.push(tokio::spawn(
            async move { users.create_user(request).await },
        ));
    }
    let mut won = 0;
    for attempt in attempts {
        match attempt.await.unwrap() {
            Ok(_) => won += 1,
            Err(status) => assert_eq!(status.code(), Code::AlreadyExists, "{}", status.message()),
        }
    }
    assert_eq!(won, 1);
    // Organization-specific names: unique within their organization, and never equal to an
    // instance-wide name.
    let other = api::organization(&app, "Other").await;
    let specific = |org: &str, name: &str| {
        let mut r = api::new_user(org, &schema, "x");
        r.usernames = vec![pb::SetUsername {
            username: name.into(),
            is_organization_specific: true,
        }];
        r
    };
    let mut users = app.users.clone();
    users.create_user(specific(&org, "local")).await.unwrap();
    users.create_user(specific(&other, "LOCAL")).await.unwrap();
    assert_eq!(
        users
            .create_user(specific(&org, "Local"))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    assert_eq!(
        users
            .create_user(specific(&other, "race"))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    assert_eq!(
        users
            .create_user(api::new_user(&org, &schema, "local"))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
}

async fn nothing_is_half_written_after_an_error(app: TestApp) {
    let (org, schema) = setup(&app).await;
    api::create_user(&app, api::new_user(&org, &schema, "second")).await;
    let before = api::processed_sequence(&app).await;
    let mut request = api::new_user(&org, &schema, "first");
    request.usernames.push(pb::SetUsername {
        username: "SECOND".into(),
        is_organization_specific: false,
    });
    let status = app.users.clone().create_user(request).await.unwrap_err();
    assert_eq!(status.code(), Code::AlreadyExists);
    assert_eq!(
        status.message(),
        "usernames[1].username: the username \"SECOND\" is taken"
    );
    assert_eq!(api::processed_sequence(&app).await, before, "no event");
    let all = app
        .users
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(all.details.unwrap().total_result, 1, "no user");
    // "first" was never kept.
    api::create_user(&app, api::new_user(&org, &schema, "first")).await;
}

async fn contact_codes_verify_once_and_limit_guesses(app: TestApp) {
    use sea_orm::EntityTrait;
    let (org, schema) = setup(&app).await;
    let id = api::create_user(&app, api::new_user(&org, &schema, "contact")).await;
    let mut users = app.users.clone();
    let set = |verification| pb::SetContactEmailRequest {
        user_id: id.clone(),
        email: Some(pb::SetEmail {
            address: "c@example.com".into(),
            verification,
        }),
    };
    let returned = pb::set_email::Verification::ReturnCode(pb::ReturnVerificationCode {});
    let code = users
        .set_contact_email(set(Some(returned.clone())))
        .await
        .unwrap()
        .into_inner()
        .verification_code
        .unwrap();
    // Stored only as a hash.
    let stored = verification_code::Entity::find()
        .all(&app.db)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(!stored[0].code_hash.contains(&code));

    let verify = |code: &str| pb::VerifyContactEmailRequest {
        user_id: id.clone(),
        verification_code: code.into(),
    };
    for attempt in 1..=4 {
        let wrong = users
            .verify_contact_email(verify("WRONG123"))
            .await
            .unwrap_err();
        assert_eq!(
            (wrong.code(), wrong.message()),
            (
                Code::InvalidArgument,
                "verificationCode: does not match the verification code"
            ),
            "attempt {attempt}"
        );
    }
    let void = users
        .verify_contact_email(verify("WRONG123"))
        .await
        .unwrap_err();
    assert_eq!(void.code(), Code::FailedPrecondition);
    // The right code no longer works: it was voided.
    assert_eq!(
        users
            .verify_contact_email(verify(&code))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    let code = users
        .set_contact_email(set(Some(returned)))
        .await
        .unwrap()
        .into_inner()
        .verification_code
        .unwrap();
    users
        .verify_contact_email(verify(&code.to_lowercase()))
        .await
        .unwrap();
    let email = api::get_user(&app, &id)
        .await
        .contact
        .unwrap()
        .email
        .unwrap();
    assert!(email.is_verified);
    assert_eq!(
        users
            .verify_contact_email(verify(&code))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    // sendCode keeps the code for a sender: nothing is returned, the address is unverified.
    let sent = users
        .set_contact_email(set(Some(pb::set_email::Verification::SendCode(
            pb::SendVerificationCode { url_template: None },
        ))))
        .await
        .unwrap();
    assert_eq!(sent.into_inner().verification_code, None);
    assert!(
        !api::get_user(&app, &id)
            .await
            .contact
            .unwrap()
            .email
            .unwrap()
            .is_verified
    );

    // Phones work the same way.
    let phone_code = users
        .set_contact_phone(pb::SetContactPhoneRequest {
            user_id: id.clone(),
            phone: Some(pb::SetPhone {
                number: "+41791112233".into(),
                verification: Some(pb::set_phone::Verification::ReturnCode(
                    pb::ReturnVerificationCode {},
                )),
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .verification_code
        .unwrap();
    users
        .verify_contact_phone(pb::VerifyContactPhoneRequest {
            user_id: id.clone(),
            verification_code: phone_code,
        })
        .await
        .unwrap();
    assert!(
        api::get_user(&app, &id)
            .await
            .contact
            .unwrap()
            .phone
            .unwrap()
            .is_verified
    );
}
