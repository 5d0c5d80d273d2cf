//! Hostile input through the real gRPC and HTTP/JSON interfaces, on SQLite and PostgreSQL: SQL
//! metacharacters, LIKE wildcards, Unicode (combining marks, RTL, emoji, zero-width joiners,
//! foldings that change length), NUL bytes and oversized values in every text field of every
//! write and every query, control characters in every stored one. A value is stored and read back byte for byte and found exactly by
//! the matching query, or refused with InvalidArgument naming the field; never Internal, and
//! the server answers afterwards.

use crate::common;

use common::TestApp;
use common::api::{self, object};
use common::hostile::{self, CONTROL, HOSTILE, METHODS, PROBES, Person};
use common::http::{self as h, assert_error};
use common::queries as q;
use reqwest::Method;
use serde_json::{Value, json};
use tonic::{Code, Status};
use userdir::proto::user::v1 as pb;

backend_tests!(
    hostile_text_round_trips_byte_exact_in_every_write,
    every_text_query_matches_literally_with_every_method,
    nul_is_invalid_argument_in_every_text_field,
    control_characters_are_invalid_argument_in_every_stored_text_field,
    control_characters_in_passwords_are_kept,
    oversized_text_is_invalid_argument_in_every_text_field,
    json_bodies_and_free_data_with_hostile_text,
);

#[test]
fn the_oracles_mean_what_sql_means() {
    assert!(hostile::like("50%_off", "50\\%\\_off"));
    assert!(!hostile::like("50x_off", "50\\%\\_off"));
    assert!(hostile::like("abc", "a%"));
    assert!(hostile::like("abc", "_b_"));
    assert!(!hostile::like("abc", "_b"));
    assert!(hostile::matches(
        pb::TextQueryMethod::ContainsIgnoreCase,
        "ΣΑΣ",
        "ας"
    ));
    assert!(!hostile::matches(
        pb::TextQueryMethod::Equals,
        "e\u{301}",
        "\u{e9}"
    ));
}

/// The server still answers, over gRPC and HTTP/JSON.
async fn still_answers(app: &TestApp) {
    app.users
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .expect("ListUsers afterwards");
    let reply = h::get(app, "/v1/users?query.limit=1").await;
    assert_eq!(reply.status, 200, "{}", reply.text);
}

// ---------------------------------------------------------------------------------------------
// Round trips

async fn hostile_text_round_trips_byte_exact_in_every_write(app: TestApp) {
    for (i, text) in HOSTILE.iter().copied().enumerate() {
        round_trip(&app, i, text).await;
    }
    still_answers(&app).await;
}

async fn round_trip(app: &TestApp, i: usize, text: &str) {
    let context = format!("value {i} {text:?}");
    // Organizations, schemas, roles.
    let org = api::organization(app, text).await;
    let got = app
        .organizations
        .clone()
        .get_organization(pb::GetOrganizationRequest {
            organization_id: org.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(got.name, text, "{context}");
    let schema = app
        .schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: text.into(),
            schema: Some(object(json!({"type": "object", "description": text}))),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"))
        .into_inner()
        .schema_id;
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
    assert_eq!(got.r#type, text, "{context}");
    assert_eq!(
        api::json_of(got.schema.as_ref().unwrap())["description"],
        text,
        "{context}"
    );
    let role = app
        .roles
        .clone()
        .create_role(pb::CreateRoleRequest {
            name: text.into(),
            description: text.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"))
        .into_inner()
        .role_id;
    let got = app
        .roles
        .clone()
        .get_role(pb::GetRoleRequest {
            role_id: role.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .role
        .unwrap();
    assert_eq!((got.name.as_str(), got.description.as_str()), (text, text));

    // A user with the value everywhere a user holds text.
    let email = hostile::email_of(text, i);
    let password = format!("{text}-password");
    let mut data = json!({"givenName": text, "note": text});
    data[text] = json!([text]);
    let user = app
        .users
        .clone()
        .create_user(pb::CreateUserRequest {
            organization_id: org.clone(),
            schema_id: schema.clone(),
            data: Some(object(data.clone())),
            usernames: vec![pb::SetUsername {
                username: text.into(),
                is_organization_specific: false,
            }],
            contact: Some(pb::SetContact {
                email: Some(pb::SetEmail {
                    address: email.clone(),
                    verification: Some(pb::set_email::Verification::SendCode(
                        pb::SendVerificationCode {
                            url_template: Some(format!("https://x.example/{text}")),
                        },
                    )),
                }),
                phone: None,
            }),
            password: Some(pb::SetPassword {
                r#type: Some(pb::set_password::Type::Password(password.clone())),
                change_required: false,
            }),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"))
        .into_inner()
        .user_id;
    let users = app.users.clone();
    let specific = format!("{i}·{text}");
    users
        .clone()
        .add_username(pb::AddUsernameRequest {
            user_id: user.clone(),
            username: Some(pb::SetUsername {
                username: specific.clone(),
                is_organization_specific: true,
            }),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    users
        .clone()
        .add_idp_link(pb::AddIdpLinkRequest {
            user_id: user.clone(),
            idp_id: text.into(),
            idp_name: text.into(),
            linked_user_id: text.into(),
            linked_username: text.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    users
        .clone()
        .start_totp_registration(pb::StartTotpRegistrationRequest {
            user_id: user.clone(),
            name: text.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    users
        .clone()
        .start_web_auth_n_registration(pb::StartWebAuthNRegistrationRequest {
            user_id: user.clone(),
            name: text.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    users
        .clone()
        .add_otp_email_authenticator(pb::AddOtpEmailAuthenticatorRequest {
            user_id: user.clone(),
            address: email.clone(),
            return_code: false,
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    let verified = users
        .clone()
        .verify_password(pb::VerifyPasswordRequest {
            user_id: user.clone(),
            password: password.clone(),
        })
        .await;
    assert!(verified.is_ok(), "{context}: {verified:?}");
    let wrong = users
        .clone()
        .verify_password(pb::VerifyPasswordRequest {
            user_id: user.clone(),
            password: format!("{password}'--"),
        })
        .await
        .unwrap_err();
    assert_ne!(wrong.code(), Code::Internal, "{context}");
    assert_ne!(wrong.code(), Code::Ok, "{context}");

    // Byte for byte over gRPC.
    let got = api::get_user(app, &user).await;
    assert_eq!(api::json_of(got.data.as_ref().unwrap()), data, "{context}");
    let authenticators = got.authenticators.as_ref().unwrap();
    let names: Vec<(&str, bool)> = authenticators
        .usernames
        .iter()
        .map(|u| (u.username.as_str(), u.is_organization_specific))
        .collect();
    assert_eq!(
        names,
        [(text, false), (specific.as_str(), true)],
        "{context}"
    );
    let link = &authenticators.identity_providers[0];
    assert_eq!(
        [
            link.idp_id.as_str(),
            &link.idp_name,
            &link.user_id,
            &link.username
        ],
        [text; 4],
        "{context}"
    );
    assert_eq!(authenticators.totps[0].name, text, "{context}");
    assert_eq!(authenticators.web_auth_n[0].name, text, "{context}");
    assert_eq!(authenticators.otp_email[0].address, email, "{context}");
    assert_eq!(
        got.contact
            .as_ref()
            .unwrap()
            .email
            .as_ref()
            .unwrap()
            .address,
        email
    );
    assert_eq!(got.schema.as_ref().unwrap().r#type, text, "{context}");
    // A page loads its authenticators another way (grouped per user as JSON, see
    // `store::reads::authenticators`): the same user, byte for byte.
    let page = users
        .clone()
        .list_users(q::matching(vec![q::user_id(&user, q::M::Equals)]))
        .await
        .expect("ListUsers by id")
        .into_inner();
    assert_eq!(
        page.result,
        std::slice::from_ref(&got),
        "{context}: the page's user"
    );

    // The same over HTTP/JSON.
    let reply = h::get(app, &format!("/v1/users/{user}")).await;
    assert_eq!(reply.status, 200, "{context}: {}", reply.text);
    let json_user = &reply.json["user"];
    assert_eq!(json_user["data"]["givenName"], text, "{context}");
    assert_eq!(
        json_user["authenticators"]["usernames"][0]["username"], text,
        "{context}"
    );
    assert_eq!(json_user["schema"]["type"], text, "{context}");

    // Patches and renames keep the text as well.
    let patched = format!("{text}{text}");
    users
        .clone()
        .patch_user(pb::PatchUserRequest {
            user_id: user.clone(),
            data: Some(object(json!({"givenName": patched}))),
            contact: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    let webauthn = &authenticators.web_auth_n[0].web_auth_n_id;
    users
        .clone()
        .rename_web_auth_n_authenticator(pb::RenameWebAuthNAuthenticatorRequest {
            user_id: user.clone(),
            web_auth_n_id: webauthn.clone(),
            name: patched.clone(),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    app.schemas
        .clone()
        .update_user_schema(pb::UpdateUserSchemaRequest {
            schema_id: schema.clone(),
            r#type: Some(patched.clone()),
            schema: None,
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
    let got = api::get_user(app, &user).await;
    assert_eq!(
        api::json_of(got.data.as_ref().unwrap())["givenName"],
        patched.as_str()
    );
    assert_eq!(got.authenticators.unwrap().web_auth_n[0].name, patched);
    assert_eq!(got.schema.unwrap().r#type, patched);
    // And the user is removed by the value it links.
    users
        .clone()
        .remove_idp_link(pb::RemoveIdpLinkRequest {
            user_id: user.clone(),
            idp_id: text.into(),
            linked_user_id: text.into(),
        })
        .await
        .unwrap_or_else(|e| panic!("{context}: {e:?}"));
}

// ---------------------------------------------------------------------------------------------
// Queries

async fn list(app: &TestApp, queries: Vec<pb::SearchQuery>) -> Result<Vec<String>, Status> {
    let response = app
        .users
        .clone()
        .list_users(pb::ListUsersRequest {
            query: Some(pb::ListQuery {
                offset: 0,
                limit: 1000,
                asc: true,
                ..Default::default()
            }),
            sorting_column: pb::FieldName::Id.into(),
            queries,
        })
        .await?
        .into_inner();
    let ids: Vec<String> = response.result.into_iter().map(|u| u.user_id).collect();
    assert_eq!(response.details.unwrap().total_result, ids.len() as u64);
    Ok(ids)
}

/// A text query on one property, the oracle's values of that property per person, the
/// longest probe it accepts, and how thoroughly it is probed.
struct TextProperty {
    name: &'static str,
    query: fn(&str, pb::TextQueryMethod) -> pb::SearchQuery,
    values: fn(&Person) -> Vec<String>,
    max_chars: usize,
    probes: Probes,
}

/// Every property compiles through the same text matcher; the users-table path (email) and
/// the username subquery get every probe and method, the others the metacharacter probes
/// with both cases and every position, ids the probes an id could meet.
#[derive(Clone, Copy, PartialEq)]
enum Probes {
    All,
    Meta,
    Ids,
}

/// Both cases, every position.
const SOME_METHODS: [pb::TextQueryMethod; 4] = [
    pb::TextQueryMethod::EqualsIgnoreCase,
    pb::TextQueryMethod::StartsWith,
    pb::TextQueryMethod::ContainsIgnoreCase,
    pb::TextQueryMethod::EndsWith,
];

fn properties() -> Vec<TextProperty> {
    vec![
        TextProperty {
            name: "username",
            query: |text, method| q::username(text, method, None),
            values: |p| p.usernames.iter().map(|(u, _)| u.clone()).collect(),
            max_chars: 200,
            probes: Probes::All,
        },
        TextProperty {
            name: "organization-specific username",
            query: |text, method| q::username(text, method, Some(true)),
            values: |p| {
                p.usernames
                    .iter()
                    .filter(|(_, specific)| *specific)
                    .map(|(u, _)| u.clone())
                    .collect()
            },
            max_chars: 200,
            probes: Probes::Meta,
        },
        TextProperty {
            name: "email",
            query: q::email,
            values: |p| p.email.iter().cloned().collect(),
            max_chars: 200,
            probes: Probes::All,
        },
        TextProperty {
            name: "phone",
            query: q::phone,
            values: |p| p.phone.iter().cloned().collect(),
            max_chars: 20,
            probes: Probes::Meta,
        },
        TextProperty {
            name: "schema type",
            query: q::schema_type,
            values: |p| vec![p.schema_type.clone()],
            max_chars: 200,
            probes: Probes::Meta,
        },
        TextProperty {
            name: "user id",
            query: q::user_id,
            values: |p| vec![p.id.clone()],
            max_chars: 200,
            probes: Probes::Ids,
        },
        TextProperty {
            name: "organization id",
            query: q::org,
            values: |p| vec![p.organization_id.clone()],
            max_chars: 200,
            probes: Probes::Ids,
        },
    ]
}

async fn every_text_query_matches_literally_with_every_method(app: TestApp) {
    let (people, role) = hostile::directory(&app).await;
    let everybody = hostile::ids_where(&people, |_| true);
    let first_id: String = people[0].id.chars().take(9).collect();
    let probes: Vec<&str> = HOSTILE
        .iter()
        .chain(PROBES)
        .copied()
        .chain([first_id.as_str()])
        .collect();
    let id_probes = [
        "%",
        "_",
        "\\",
        "'",
        "-",
        "%%",
        "\\%",
        "' OR '1'='1",
        first_id.as_str(),
    ];
    for property in properties() {
        let (methods, probes): (&[pb::TextQueryMethod], &[&str]) = match property.probes {
            Probes::All => (&METHODS, &probes),
            Probes::Meta => (&SOME_METHODS, PROBES),
            Probes::Ids => (&METHODS, &id_probes),
        };
        for &method in methods {
            for probe in probes {
                if probe.chars().count() > property.max_chars {
                    continue;
                }
                let expected = hostile::ids_where(&people, |p| {
                    (property.values)(p)
                        .iter()
                        .any(|v| hostile::matches(method, v, probe))
                });
                let found = list(&app, vec![(property.query)(probe, method)])
                    .await
                    .unwrap_or_else(|e| panic!("{} {method:?} {probe:?}: {e:?}", property.name));
                assert_eq!(found, expected, "{} {method:?} {probe:?}", property.name);
                // NOT is the exact complement (no SQL NULL leaks through).
                if method == pb::TextQueryMethod::Contains {
                    let found = list(&app, vec![q::not((property.query)(probe, method))])
                        .await
                        .unwrap();
                    let complement: Vec<String> = everybody
                        .iter()
                        .filter(|id| !expected.contains(id))
                        .cloned()
                        .collect();
                    assert_eq!(found, complement, "NOT {} {probe:?}", property.name);
                }
            }
        }
    }

    // Organization names (ListOrganizations) and role members (ListRoleUsers).
    for method in SOME_METHODS {
        for probe in HOSTILE.iter().chain(PROBES) {
            let mut expected: Vec<String> = people
                .iter()
                .filter(|p| hostile::matches(method, &p.organization_name, probe))
                .map(|p| p.organization_id.clone())
                .collect();
            expected.sort();
            let mut found: Vec<String> = app
                .organizations
                .clone()
                .list_organizations(pb::ListOrganizationsRequest {
                    query: Some(pb::ListQuery {
                        offset: 0,
                        limit: 1000,
                        asc: true,
                        ..Default::default()
                    }),
                    name_query: Some(pb::OrganizationNameQuery {
                        name: probe.to_string(),
                        method: method.into(),
                    }),
                })
                .await
                .unwrap_or_else(|e| panic!("organization name {method:?} {probe:?}: {e:?}"))
                .into_inner()
                .result
                .into_iter()
                .map(|o| o.organization_id)
                .collect();
            found.sort();
            assert_eq!(found, expected, "organization name {method:?} {probe:?}");
        }
    }
    for probe in HOSTILE {
        let method = pb::TextQueryMethod::ContainsIgnoreCase;
        let expected = hostile::ids_where(&people, |p| {
            p.usernames
                .iter()
                .any(|(u, _)| hostile::matches(method, u, probe))
        });
        let mut found: Vec<String> = app
            .roles
            .clone()
            .list_role_users(pb::ListRoleUsersRequest {
                role_id: role.clone(),
                query: Some(pb::ListQuery {
                    offset: 0,
                    limit: 1000,
                    asc: true,
                    ..Default::default()
                }),
                sorting_column: 0,
                queries: vec![q::username(probe, method, None)],
            })
            .await
            .unwrap()
            .into_inner()
            .result
            .into_iter()
            .map(|u| u.user_id)
            .collect();
        found.sort();
        assert_eq!(found, expected, "role users {probe:?}");
    }

    // The same through HTTP/JSON, nested in or/and.
    for probe in HOSTILE {
        let method = pb::TextQueryMethod::EndsWith;
        let expected = hostile::ids_where(&people, |p| {
            p.email
                .iter()
                .any(|e| hostile::matches(method, e, &format!("{probe}@x.example")))
                || p.usernames
                    .iter()
                    .any(|(u, specific)| !specific && u == probe)
        });
        let body = json!({
            "query": {"limit": 1000, "asc": true},
            "sortingColumn": "FIELD_NAME_ID",
            "queries": [{"orQuery": {"queries": [
                {"emailQuery": {"address": format!("{probe}@x.example"), "method": "TEXT_QUERY_METHOD_ENDS_WITH"}},
                {"andQuery": {"queries": [
                    {"usernameQuery": {"username": probe, "method": "TEXT_QUERY_METHOD_EQUALS", "isOrganizationSpecific": false}}
                ]}}
            ]}}]
        });
        let reply = h::post(&app, "/v1/users/_search", &body.to_string()).await;
        assert_eq!(reply.status, 200, "{probe:?}: {}", reply.text);
        let mut found: Vec<String> = reply.json["result"]
            .as_array()
            .map(|users| {
                users
                    .iter()
                    .map(|u| u["userId"].as_str().unwrap().to_owned())
                    .collect()
            })
            .unwrap_or_default();
        found.sort();
        assert_eq!(found, expected, "JSON {probe:?}");
    }

    // Nothing was harmed.
    assert_eq!(list(&app, vec![]).await.unwrap(), everybody);
    still_answers(&app).await;
}

// ---------------------------------------------------------------------------------------------
// NUL and oversized values in every field

/// Every text field of every write and lookup, by RPC and JSON field name.
const WRITE_FIELDS: &[(&str, &str)] = &[
    ("GetUser", "userId"),
    ("CreateUser", "organizationId"),
    ("CreateUser", "schemaId"),
    ("CreateUser", "usernames[0].username"),
    ("CreateUser", "contact.email.address"),
    ("CreateUser", "contact.email.sendCode.urlTemplate"),
    ("CreateUser", "contact.phone.number"),
    ("CreateUser", "contact.phone.sendCode.urlTemplate"),
    ("CreateUser", "password.password"),
    ("CreateUser", "password.hash"),
    ("CreateUser", "data.givenName"),
    ("CreateUser", "data.familyName"),
    ("CreateUser", "data.name"),
    ("PatchUser", "userId"),
    ("PatchUser", "data.name"),
    ("PatchUser", "contact.email.address"),
    ("PatchUser", "contact.phone.number"),
    ("DeleteUser", "userId"),
    ("DeactivateUser", "userId"),
    ("ReactivateUser", "userId"),
    ("LockUser", "userId"),
    ("UnlockUser", "userId"),
    ("SetContactEmail", "userId"),
    ("SetContactEmail", "email.address"),
    ("VerifyContactEmail", "userId"),
    ("VerifyContactEmail", "verificationCode"),
    ("SetContactPhone", "phone.number"),
    ("VerifyContactPhone", "verificationCode"),
    ("AddUsername", "userId"),
    ("AddUsername", "username.username"),
    ("RemoveUsername", "usernameId"),
    ("SetPassword", "newPassword.password"),
    ("SetPassword", "newPassword.hash"),
    ("RemovePassword", "userId"),
    ("VerifyPassword", "password"),
    ("StartWebAuthNRegistration", "name"),
    ("VerifyWebAuthNRegistration", "webAuthNId"),
    ("VerifyWebAuthNRegistration", "name"),
    ("RenameWebAuthNAuthenticator", "webAuthNId"),
    ("RenameWebAuthNAuthenticator", "name"),
    ("RemoveWebAuthNAuthenticator", "webAuthNId"),
    ("StartTOTPRegistration", "name"),
    ("VerifyTOTPRegistration", "totpId"),
    ("VerifyTOTPRegistration", "code"),
    ("RemoveTOTPAuthenticator", "totpId"),
    ("AddOTPSMSAuthenticator", "phone"),
    ("VerifyOTPSMSRegistration", "otpSmsId"),
    ("VerifyOTPSMSRegistration", "code"),
    ("RemoveOTPSMSAuthenticator", "otpSmsId"),
    ("AddOTPEmailAuthenticator", "address"),
    ("VerifyOTPEmailRegistration", "otpEmailId"),
    ("VerifyOTPEmailRegistration", "code"),
    ("RemoveOTPEmailAuthenticator", "otpEmailId"),
    ("AddAuthenticationKey", "userId"),
    ("RemoveAuthenticationKey", "authenticationKeyId"),
    ("AddIDPLink", "idpId"),
    ("AddIDPLink", "idpName"),
    ("AddIDPLink", "linkedUserId"),
    ("AddIDPLink", "linkedUsername"),
    ("RemoveIDPLink", "idpId"),
    ("RemoveIDPLink", "linkedUserId"),
    ("CreateOrganization", "name"),
    ("GetOrganization", "organizationId"),
    ("ListOrganizations", "nameQuery.name"),
    ("CreateUserSchema", "type"),
    ("UpdateUserSchema", "schemaId"),
    ("UpdateUserSchema", "type"),
    ("GetUserSchema", "schemaId"),
    ("CreateRole", "name"),
    ("CreateRole", "description"),
    ("GetRole", "roleId"),
    ("AssignRole", "roleId"),
    ("AssignRole", "userIds[1]"),
    ("UnassignRole", "roleId"),
    ("UnassignRole", "userId"),
    ("ListRoleUsers", "roleId"),
    ("ListRoleUsers", "queries[0].usernameQuery.username"),
    ("ListUsers", "queries[0].userIdQuery.id"),
    ("ListUsers", "queries[0].organizationIdQuery.id"),
    ("ListUsers", "queries[0].usernameQuery.username"),
    ("ListUsers", "queries[0].emailQuery.address"),
    ("ListUsers", "queries[0].phoneQuery.number"),
    ("ListUsers", "queries[0].schemaIDQuery.id"),
    ("ListUsers", "queries[0].schemaTypeQuery.type"),
    (
        "ListUsers",
        "queries[1].orQuery.queries[0].notQuery.query.emailQuery.address",
    ),
];

/// `value` if this is the field under test, else a valid stand-in.
fn pick(field: &str, target: &str, value: &str, otherwise: &str) -> String {
    if field == target {
        value.to_owned()
    } else {
        otherwise.to_owned()
    }
}

fn ok<T>(result: Result<tonic::Response<T>, Status>) -> Result<(), Status> {
    result.map(|_| ())
}

/// Calls `rpc` with `value` in `field` and valid values elsewhere (ids that name nothing:
/// a lookup happens only after every field is parsed).
async fn call_with(app: &TestApp, rpc: &str, field: &str, value: &str) -> Result<(), Status> {
    let v = |target: &str, otherwise: &str| pick(field, target, value, otherwise);
    let mut users = app.users.clone();
    let user_id = v("userId", "no-such-user");
    let email = |target: &str| {
        Some(pb::SetEmail {
            address: v(&format!("{target}.address"), "a@x.example"),
            verification: Some(pb::set_email::Verification::SendCode(
                pb::SendVerificationCode {
                    url_template: Some(v(
                        &format!("{target}.sendCode.urlTemplate"),
                        "https://x.example",
                    )),
                },
            )),
        })
    };
    let phone = |target: &str| {
        Some(pb::SetPhone {
            number: v(&format!("{target}.number"), "+41 79 000 00 00"),
            verification: Some(pb::set_phone::Verification::SendCode(
                pb::SendVerificationCode {
                    url_template: Some(v(
                        &format!("{target}.sendCode.urlTemplate"),
                        "https://x.example",
                    )),
                },
            )),
        })
    };
    let password = |target: &str| {
        Some(pb::SetPassword {
            r#type: Some(if field == format!("{target}.hash") {
                pb::set_password::Type::Hash(value.to_owned())
            } else {
                pb::set_password::Type::Password(v(
                    &format!("{target}.password"),
                    "long enough password",
                ))
            }),
            change_required: false,
        })
    };
    let data = || {
        let mut data = json!({"givenName": "Gigi"});
        if let Some(key) = field.strip_prefix("data.") {
            data[key] = json!(value);
        }
        Some(object(data))
    };
    let schema = || {
        let mut schema = json!({"type": "object"});
        if let Some(key) = field.strip_prefix("schema.") {
            schema[key] = json!(value);
        }
        Some(object(schema))
    };
    let text_query = |target: &str| {
        (
            v(target, "x"),
            pb::TextQueryMethod::ContainsIgnoreCase as i32,
        )
    };
    let page = Some(pb::ListQuery {
        offset: 0,
        limit: 10,
        asc: false,
        ..Default::default()
    });
    match rpc {
        "GetUser" => ok(users.get_user(pb::GetUserRequest { user_id }).await),
        "CreateUser" => ok(users
            .create_user(pb::CreateUserRequest {
                organization_id: v("organizationId", "no-such-org"),
                schema_id: v("schemaId", "no-such-schema"),
                data: data(),
                usernames: vec![pb::SetUsername {
                    username: v("usernames[0].username", "gigi"),
                    is_organization_specific: false,
                }],
                contact: Some(pb::SetContact {
                    email: email("contact.email"),
                    phone: phone("contact.phone"),
                }),
                password: password("password"),
            })
            .await),
        "PatchUser" => ok(users
            .patch_user(pb::PatchUserRequest {
                user_id,
                data: data(),
                contact: Some(pb::SetContact {
                    email: email("contact.email"),
                    phone: phone("contact.phone"),
                }),
            })
            .await),
        "DeleteUser" => ok(users.delete_user(pb::DeleteUserRequest { user_id }).await),
        "DeactivateUser" => ok(users
            .deactivate_user(pb::DeactivateUserRequest { user_id })
            .await),
        "ReactivateUser" => ok(users
            .reactivate_user(pb::ReactivateUserRequest { user_id })
            .await),
        "LockUser" => ok(users.lock_user(pb::LockUserRequest { user_id }).await),
        "UnlockUser" => ok(users.unlock_user(pb::UnlockUserRequest { user_id }).await),
        "SetContactEmail" => ok(users
            .set_contact_email(pb::SetContactEmailRequest {
                user_id,
                email: email("email"),
            })
            .await),
        "VerifyContactEmail" => ok(users
            .verify_contact_email(pb::VerifyContactEmailRequest {
                user_id,
                verification_code: v("verificationCode", "ABCDEFGH"),
            })
            .await),
        "SetContactPhone" => ok(users
            .set_contact_phone(pb::SetContactPhoneRequest {
                user_id,
                phone: phone("phone"),
            })
            .await),
        "VerifyContactPhone" => ok(users
            .verify_contact_phone(pb::VerifyContactPhoneRequest {
                user_id,
                verification_code: v("verificationCode", "ABCDEFGH"),
            })
            .await),
        "AddUsername" => ok(users
            .add_username(pb::AddUsernameRequest {
                user_id,
                username: Some(pb::SetUsername {
                    username: v("username.username", "gigi"),
                    is_organization_specific: false,
                }),
            })
            .await),
        "RemoveUsername" => ok(users
            .remove_username(pb::RemoveUsernameRequest {
                user_id,
                username_id: v("usernameId", "no-such-username"),
            })
            .await),
        "SetPassword" => ok(users
            .set_password(pb::SetPasswordRequest {
                user_id,
                new_password: password("newPassword"),
            })
            .await),
        "RemovePassword" => ok(users
            .remove_password(pb::RemovePasswordRequest { user_id })
            .await),
        "VerifyPassword" => ok(users
            .verify_password(pb::VerifyPasswordRequest {
                user_id,
                password: v("password", "long enough password"),
            })
            .await),
        "StartWebAuthNRegistration" => ok(users
            .start_web_auth_n_registration(pb::StartWebAuthNRegistrationRequest {
                user_id,
                name: v("name", "Laptop"),
            })
            .await),
        "VerifyWebAuthNRegistration" => ok(users
            .verify_web_auth_n_registration(pb::VerifyWebAuthNRegistrationRequest {
                user_id,
                web_auth_n_id: v("webAuthNId", "no-such-key"),
                public_key_credential: Some(object(
                    match field.strip_prefix("publicKeyCredential.") {
                        Some(key) => json!({ key: value }),
                        None => json!({}),
                    },
                )),
                name: Some(v("name", "Laptop")),
            })
            .await),
        "RenameWebAuthNAuthenticator" => ok(users
            .rename_web_auth_n_authenticator(pb::RenameWebAuthNAuthenticatorRequest {
                user_id,
                web_auth_n_id: v("webAuthNId", "no-such-key"),
                name: v("name", "Laptop"),
            })
            .await),
        "RemoveWebAuthNAuthenticator" => ok(users
            .remove_web_auth_n_authenticator(pb::RemoveWebAuthNAuthenticatorRequest {
                user_id,
                web_auth_n_id: v("webAuthNId", "no-such-key"),
            })
            .await),
        "StartTOTPRegistration" => ok(users
            .start_totp_registration(pb::StartTotpRegistrationRequest {
                user_id,
                name: v("name", "Phone"),
            })
            .await),
        "VerifyTOTPRegistration" => ok(users
            .verify_totp_registration(pb::VerifyTotpRegistrationRequest {
                user_id,
                totp_id: v("totpId", "no-such-totp"),
                code: v("code", "123456"),
            })
            .await),
        "RemoveTOTPAuthenticator" => ok(users
            .remove_totp_authenticator(pb::RemoveTotpAuthenticatorRequest {
                user_id,
                totp_id: v("totpId", "no-such-totp"),
            })
            .await),
        "AddOTPSMSAuthenticator" => ok(users
            .add_otpsms_authenticator(pb::AddOtpsmsAuthenticatorRequest {
                user_id,
                phone: v("phone", "+41 79 000 00 00"),
                return_code: false,
            })
            .await),
        "VerifyOTPSMSRegistration" => ok(users
            .verify_otpsms_registration(pb::VerifyOtpsmsRegistrationRequest {
                user_id,
                otp_sms_id: v("otpSmsId", "no-such-otp"),
                code: v("code", "123456"),
            })
            .await),
        "RemoveOTPSMSAuthenticator" => ok(users
            .remove_otpsms_authenticator(pb::RemoveOtpsmsAuthenticatorRequest {
                user_id,
                otp_sms_id: v("otpSmsId", "no-such-otp"),
            })
            .await),
        "AddOTPEmailAuthenticator" => ok(users
            .add_otp_email_authenticator(pb::AddOtpEmailAuthenticatorRequest {
                user_id,
                address: v("address", "a@x.example"),
                return_code: false,
            })
            .await),
        "VerifyOTPEmailRegistration" => ok(users
            .verify_otp_email_registration(pb::VerifyOtpEmailRegistrationRequest {
                user_id,
                otp_email_id: v("otpEmailId", "no-such-otp"),
                code: v("code", "123456"),
            })
            .await),
        "RemoveOTPEmailAuthenticator" => ok(users
            .remove_otp_email_authenticator(pb::RemoveOtpEmailAuthenticatorRequest {
                user_id,
                otp_email_id: v("otpEmailId", "no-such-otp"),
            })
            .await),
        "AddAuthenticationKey" => ok(users
            .add_authentication_key(pb::AddAuthenticationKeyRequest {
                user_id,
                expiration_date: None,
            })
            .await),
        "RemoveAuthenticationKey" => ok(users
            .remove_authentication_key(pb::RemoveAuthenticationKeyRequest {
                user_id,
                authentication_key_id: v("authenticationKeyId", "no-such-key"),
            })
            .await),
        "AddIDPLink" => ok(users
            .add_idp_link(pb::AddIdpLinkRequest {
                user_id,
                idp_id: v("idpId", "github"),
                idp_name: v("idpName", "GitHub"),
                linked_user_id: v("linkedUserId", "583231"),
                linked_username: v("linkedUsername", "octocat"),
            })
            .await),
        "RemoveIDPLink" => ok(users
            .remove_idp_link(pb::RemoveIdpLinkRequest {
                user_id,
                idp_id: v("idpId", "github"),
                linked_user_id: v("linkedUserId", "583231"),
            })
            .await),
        "CreateOrganization" => ok(app
            .organizations
            .clone()
            .create_organization(pb::CreateOrganizationRequest {
                name: v("name", "Acme"),
            })
            .await),
        "GetOrganization" => ok(app
            .organizations
            .clone()
            .get_organization(pb::GetOrganizationRequest {
                organization_id: v("organizationId", "no-such-org"),
            })
            .await),
        "ListOrganizations" => {
            let (name, method) = text_query("nameQuery.name");
            ok(app
                .organizations
                .clone()
                .list_organizations(pb::ListOrganizationsRequest {
                    query: page,
                    name_query: Some(pb::OrganizationNameQuery { name, method }),
                })
                .await)
        }
        "CreateUserSchema" => ok(app
            .schemas
            .clone()
            .create_user_schema(pb::CreateUserSchemaRequest {
                r#type: v("type", "person"),
                schema: schema(),
            })
            .await),
        "UpdateUserSchema" => ok(app
            .schemas
            .clone()
            .update_user_schema(pb::UpdateUserSchemaRequest {
                schema_id: v("schemaId", "no-such-schema"),
                r#type: Some(v("type", "person")),
                schema: schema(),
            })
            .await),
        "GetUserSchema" => ok(app
            .schemas
            .clone()
            .get_user_schema(pb::GetUserSchemaRequest {
                schema_id: v("schemaId", "no-such-schema"),
            })
            .await),
        "CreateRole" => ok(app
            .roles
            .clone()
            .create_role(pb::CreateRoleRequest {
                name: v("name", "admin"),
                description: v("description", "everything"),
            })
            .await),
        "GetRole" => ok(app
            .roles
            .clone()
            .get_role(pb::GetRoleRequest {
                role_id: v("roleId", "no-such-role"),
            })
            .await),
        "AssignRole" => ok(app
            .roles
            .clone()
            .assign_role(pb::AssignRoleRequest {
                role_id: v("roleId", "no-such-role"),
                user_ids: vec!["no-such-user".into(), v("userIds[1]", "other-user")],
            })
            .await),
        "UnassignRole" => ok(app
            .roles
            .clone()
            .unassign_role(pb::UnassignRoleRequest {
                role_id: v("roleId", "no-such-role"),
                user_id,
            })
            .await),
        "ListRoleUsers" => {
            let (username, method) = text_query("queries[0].usernameQuery.username");
            ok(app
                .roles
                .clone()
                .list_role_users(pb::ListRoleUsersRequest {
                    role_id: v("roleId", "no-such-role"),
                    query: page,
                    sorting_column: 0,
                    queries: vec![q::username(
                        &username,
                        pb::TextQueryMethod::try_from(method).unwrap(),
                        None,
                    )],
                })
                .await)
        }
        "ListUsers" => {
            let m = pb::TextQueryMethod::ContainsIgnoreCase;
            let at = |query: &str| v(&format!("queries[0].{query}"), "x");
            let queries = match field.strip_prefix("queries[0].") {
                Some(leaf) => vec![match leaf {
                    "userIdQuery.id" => q::user_id(&at(leaf), m),
                    "organizationIdQuery.id" => q::org(&at(leaf), m),
                    "usernameQuery.username" => q::username(&at(leaf), m, None),
                    "emailQuery.address" => q::email(&at(leaf), m),
                    "phoneQuery.number" => q::phone(&at(leaf), m),
                    "schemaIDQuery.id" => q::schema_id(&at(leaf)),
                    "schemaTypeQuery.type" => q::schema_type(&at(leaf), m),
                    other => panic!("no ListUsers field {other}"),
                }],
                None => vec![
                    q::state(pb::State::UserStateActive),
                    q::or(vec![q::not(q::email(value, m))]),
                ],
            };
            ok(app
                .users
                .clone()
                .list_users(pb::ListUsersRequest {
                    query: page,
                    sorting_column: 0,
                    queries,
                })
                .await)
        }
        other => panic!("no RPC {other}"),
    }
}

/// Each field with `value` must be InvalidArgument with a message `<field>: <reason>`.
async fn refused_in_every_field(app: &TestApp, value: &str, reason: &str) {
    refused_in(app, WRITE_FIELDS, value, reason).await;
}

/// Each of `fields` with `value` must be InvalidArgument with a message `<field>: <reason>`.
async fn refused_in(app: &TestApp, fields: &[(&str, &str)], value: &str, reason: &str) {
    for (rpc, field) in fields {
        let status = call_with(app, rpc, field, value)
            .await
            .expect_err(&format!("{rpc} {field} must refuse the value"));
        assert_eq!(
            status.code(),
            Code::InvalidArgument,
            "{rpc} {field}: {status:?}"
        );
        let message = status.message();
        assert!(
            message.starts_with(&format!("{field}: ")) && message.contains(reason),
            "{rpc} {field}: {message:?} should name the field and say {reason:?}"
        );
    }
    // With valid values everywhere, the same calls pass every check (and find nothing).
    let mut rpcs: Vec<&str> = fields.iter().map(|(rpc, _)| *rpc).collect();
    rpcs.dedup();
    for rpc in rpcs {
        if let Err(status) = call_with(app, rpc, "none", "").await {
            // An empty credential is refused for what it is, the only field that is not.
            let credential = rpc == "VerifyWebAuthNRegistration"
                && status
                    .message()
                    .starts_with("publicKeyCredential: is not a registration");
            assert!(
                matches!(
                    status.code(),
                    Code::NotFound | Code::FailedPrecondition | Code::AlreadyExists
                ) || credential,
                "{rpc}: {status:?}"
            );
        }
    }
}

/// JSON fields (free-form data, schemas, credentials): any length up to the message size,
/// but no NUL, which PostgreSQL's JSON types cannot hold.
const JSON_FIELDS: &[(&str, &str)] = &[
    ("CreateUser", "data.note"),
    ("PatchUser", "data.note"),
    ("CreateUserSchema", "schema.description"),
    ("UpdateUserSchema", "schema.description"),
    ("VerifyWebAuthNRegistration", "publicKeyCredential.id"),
];

async fn nul_is_invalid_argument_in_every_text_field(app: TestApp) {
    refused_in_every_field(&app, "ab\0cdefgh", "must not contain NUL").await;
    for (rpc, field) in JSON_FIELDS {
        let status = call_with(&app, rpc, field, "a\0b").await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{rpc}: {status:?}");
        assert_eq!(
            status.message(),
            format!("{field}: must not contain NUL characters"),
            "{rpc}"
        );
    }
    still_answers(&app).await;
}

/// Every text field but search values (which store nothing, and may look for rows written
/// before the rule) and plain passwords (never shown; see `control_characters_in_passwords`)
/// refuses control characters.
async fn control_characters_are_invalid_argument_in_every_stored_text_field(app: TestApp) {
    let stored: Vec<(&str, &str)> = WRITE_FIELDS
        .iter()
        .copied()
        .filter(|(_, field)| !field.contains("Query") && !field.ends_with("password"))
        .collect();
    for text in CONTROL {
        // Long enough for a password, short enough for a code: only the characters are wrong.
        let value = format!("{text:-<8}");
        refused_in(&app, &stored, &value, "must not contain control characters").await;
    }
    still_answers(&app).await;
}

/// A password is a secret nobody sees: control characters in it are kept, set and verified
/// byte for byte (refusing them would lock out whoever chose one); only NUL is refused.
async fn control_characters_in_passwords_are_kept(app: TestApp) {
    let org = api::organization(&app, "Acme").await;
    let schema = api::person_schema(&app, "person").await;
    let user = api::create_user(&app, api::new_user(&org, &schema, "typist")).await;
    let mut users = app.users.clone();
    for text in CONTROL {
        let password = format!("{text:-<8}");
        users
            .set_password(pb::SetPasswordRequest {
                user_id: user.clone(),
                new_password: Some(pb::SetPassword {
                    r#type: Some(pb::set_password::Type::Password(password.clone())),
                    change_required: false,
                }),
            })
            .await
            .unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        users
            .verify_password(pb::VerifyPasswordRequest {
                user_id: user.clone(),
                password: password.clone(),
            })
            .await
            .unwrap_or_else(|e| panic!("{text:?}: {e:?}"));
        let wrong = users
            .verify_password(pb::VerifyPasswordRequest {
                user_id: user.clone(),
                password: password.replace(|c: char| c.is_control(), " "),
            })
            .await
            .unwrap_err();
        assert_eq!(wrong.code(), Code::InvalidArgument, "{text:?}");
    }
}

async fn oversized_text_is_invalid_argument_in_every_text_field(app: TestApp) {
    // Over every limit (description: 1000), in bytes and in characters.
    refused_in_every_field(&app, &"x".repeat(100_000), "must be at most").await;
    refused_in_every_field(&app, &"€".repeat(1001), "must be at most").await;
    refused_in_every_field(&app, &"👩\u{200d}".repeat(501), "must be at most").await;
    still_answers(&app).await;
}

// ---------------------------------------------------------------------------------------------
// JSON bodies and free-form data

async fn json_bodies_and_free_data_with_hostile_text(app: TestApp) {
    let org = api::organization(&app, "Acme").await;
    let schema = api::person_schema(&app, "person").await;
    // Free-form data may hold huge strings and hostile keys: it is JSON, not text.
    let free = json!({
        "givenName": "Gigi",
        "'; DROP TABLE users; --": "%_\\",
        "big": "ü".repeat(100_000),
        "nested": {"a\u{200d}b": [true, "\u{202e}", {"%": null}]},
    });
    let schema_free = app
        .schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: "free".into(),
            schema: Some(object(
                json!({"type": "object", "description": "o'brien \\ %_"}),
            )),
        })
        .await
        .unwrap()
        .into_inner()
        .schema_id;
    let mut request = api::new_user(&org, &schema_free, "free");
    request.data = Some(object(free.clone()));
    let id = api::create_user(&app, request).await;
    let user = api::get_user(&app, &id).await;
    let got = api::json_of(user.data.as_ref().unwrap());
    assert_eq!(got, free);
    let reply = h::get(&app, &format!("/v1/users/{id}")).await;
    assert_eq!(reply.status, 200, "{}", reply.text);
    assert_eq!(reply.json["user"]["data"], free);
    let got = app
        .schemas
        .clone()
        .get_user_schema(pb::GetUserSchemaRequest {
            schema_id: schema_free.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .schema
        .unwrap();
    assert_eq!(
        api::json_of(got.schema.as_ref().unwrap())["description"],
        "o'brien \\ %_"
    );
    // But no NUL, anywhere: PostgreSQL's JSON types cannot hold it.
    for (data, message) in [
        (
            json!({"givenName": "x", "nul": "a\u{0}b"}),
            "data.nul: must not contain NUL",
        ),
        (
            json!({"givenName": "x", "deep": [{"a": ["\u{0}"]}]}),
            "data.deep[0].a[0]: must not contain NUL",
        ),
        (
            json!({"givenName": "x", "a\u{0}key": true}),
            "data: keys must not contain NUL",
        ),
    ] {
        let mut request = api::new_user(&org, &schema_free, "nul");
        request.data = Some(object(data.clone()));
        let status = app.users.clone().create_user(request).await.unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert!(status.message().starts_with(message), "{status:?}");
        let body = json!({"organizationId": org, "schemaId": schema_free, "data": data});
        let reply = h::post(&app, "/v1/users", &body.to_string()).await;
        assert_error(&reply, 400, 3, message);
    }
    // The user's name is text (stored and indexed): NUL there is refused as well.
    let body = json!({
        "organizationId": org, "schemaId": schema,
        "data": {"givenName": "a\u{0}b"},
    });
    let reply = h::post(&app, "/v1/users", &body.to_string()).await;
    assert_error(&reply, 400, 3, "data.givenName: must not contain NUL");

    // JSON escapes reach the same checks as gRPC strings.
    let reply = h::post(&app, "/v1/organizations", r#"{"name": "a\u0000b"}"#).await;
    assert_error(&reply, 400, 3, "name: must not contain NUL characters");
    let reply = h::post(&app, "/v1/organizations", r#"{"name": "\ud800"}"#).await;
    assert_eq!(reply.status, 400, "a lone surrogate: {}", reply.text);
    assert_eq!(reply.json["code"], 3);
    let reply = h::send(
        &app,
        Method::POST,
        "/v1/organizations",
        Some(b"{\"name\": \"\xff\xfe\"}"),
    )
    .await;
    assert_eq!(reply.status, 400, "invalid UTF-8: {}", reply.text);
    assert_eq!(reply.json["code"], 3);
    let reply = h::post(
        &app,
        "/v1/organizations",
        &json!({"name": "x".repeat(201)}).to_string(),
    )
    .await;
    assert_error(
        &reply,
        400,
        3,
        "name: must be at most 200 characters, got 201",
    );
    let reply = h::post(
        &app,
        "/v1/organizations",
        &json!({"name": "o'brien\"; --"}).to_string(),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.text);

    // Hostile text in path variables and query parameters.
    for path in [
        "/v1/users/%00",
        "/v1/users/%27%20OR%20%271%27%3D%271",
        "/v1/organizations/%25",
        "/v1/roles/_",
    ] {
        let (status, body) = h::raw_get(&app, path).await;
        assert!(status == 400 || status == 404, "{path}: {status} {body}");
        let json: Value = serde_json::from_str(&body).unwrap();
        assert!(json["code"] == 3 || json["code"] == 5, "{path}: {body}");
    }
    let reply = h::get(&app, "/v1/users/%00").await;
    assert_error(&reply, 400, 3, "userId: must not contain NUL characters");
    let (status, body) = h::raw_get(&app, &format!("/v1/users/{}", "x".repeat(201))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body.contains("userId: must be at most 200 characters"),
        "{body}"
    );
    still_answers(&app).await;
}
