//! Authenticators through the write API, on SQLite and PostgreSQL.

use crate::common;

use common::TestApp;
use common::api::{self, json_of, object};
use prost_types::Timestamp;
use tonic::Code;
use userdir::proto::user::v1 as pb;

backend_tests!(
    usernames_are_added_and_removed,
    passwords_are_hashed_verified_and_imported,
    totp_registers_with_a_real_code,
    otp_sms_and_email_verify_with_a_code,
    authentication_keys_hand_out_the_private_key_once,
    idp_links_are_unique_per_provider,
    webauthn_registers_a_software_passkey,
);

async fn user(app: &TestApp, name: &str) -> String {
    let org = api::organization(app, "Acme").await;
    let schema = api::person_schema(app, &format!("schema-{name}")).await;
    api::create_user(app, api::new_user(&org, &schema, name)).await
}

async fn authenticators(app: &TestApp, id: &str) -> pb::Authenticators {
    api::get_user(app, id).await.authenticators.unwrap()
}

async fn usernames_are_added_and_removed(app: TestApp) {
    let id = user(&app, "main").await;
    let mut users = app.users.clone();
    let add = |name: &str, specific| pb::AddUsernameRequest {
        user_id: id.clone(),
        username: Some(pb::SetUsername {
            username: name.into(),
            is_organization_specific: specific,
        }),
    };
    let added = users
        .add_username(add("alias", true))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        users
            .add_username(add("ALIAS", false))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    assert_eq!(
        users
            .add_username(add("Main", true))
            .await
            .unwrap_err()
            .code(),
        Code::AlreadyExists
    );
    let names: Vec<String> = authenticators(&app, &id)
        .await
        .usernames
        .into_iter()
        .map(|u| u.username)
        .collect();
    assert_eq!(names, ["main", "alias"]);
    users
        .remove_username(pb::RemoveUsernameRequest {
            user_id: id.clone(),
            username_id: added.username_id.clone(),
        })
        .await
        .unwrap();
    let again = users
        .remove_username(pb::RemoveUsernameRequest {
            user_id: id.clone(),
            username_id: added.username_id,
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    assert!(again.message().starts_with("usernameId: "));
    let missing = users
        .add_username(pb::AddUsernameRequest {
            user_id: id.clone(),
            username: None,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::InvalidArgument, "username: is required")
    );
}

async fn passwords_are_hashed_verified_and_imported(app: TestApp) {
    let id = user(&app, "pw").await;
    let mut users = app.users.clone();
    let verify = |password: &str| pb::VerifyPasswordRequest {
        user_id: id.clone(),
        password: password.into(),
    };
    let none = users.verify_password(verify("anything")).await.unwrap_err();
    assert_eq!(none.code(), Code::FailedPrecondition);

    let set = |kind| pb::SetPasswordRequest {
        user_id: id.clone(),
        new_password: Some(pb::SetPassword {
            r#type: Some(kind),
            change_required: true,
        }),
    };
    users
        .set_password(set(pb::set_password::Type::Password(
            "correct horse battery".into(),
        )))
        .await
        .unwrap();
    assert!(
        authenticators(&app, &id)
            .await
            .password
            .unwrap()
            .last_changed
            .is_some()
    );
    let wrong = users
        .verify_password(verify("wrong horse battery"))
        .await
        .unwrap_err();
    assert_eq!(
        (wrong.code(), wrong.message()),
        (Code::InvalidArgument, "password: does not match")
    );
    assert_eq!(api::get_user(&app, &id).await.last_login, None);
    let ok = users
        .verify_password(verify("correct horse battery"))
        .await
        .unwrap()
        .into_inner();
    assert!(ok.change_required);
    assert_eq!(
        api::get_user(&app, &id).await.last_login,
        ok.last_login,
        "the sign-in is recorded as lastLogin"
    );

    // An imported bcrypt hash verifies; the hash itself is never returned.
    let bcrypt = bcrypt::hash("imported secret", 4).unwrap();
    users
        .set_password(set(pb::set_password::Type::Hash(bcrypt.clone())))
        .await
        .unwrap();
    users
        .verify_password(verify("imported secret"))
        .await
        .unwrap();
    let user = api::get_user(&app, &id).await;
    assert!(!format!("{user:?}").contains("$2b$"));
    let bad = users
        .set_password(set(pb::set_password::Type::Hash("$1$md5crypt".into())))
        .await
        .unwrap_err();
    assert_eq!(bad.code(), Code::InvalidArgument);

    // A locked user cannot sign in.
    users
        .lock_user(pb::LockUserRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap();
    assert_eq!(
        users
            .verify_password(verify("imported secret"))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );
    users
        .unlock_user(pb::UnlockUserRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap();

    users
        .remove_password(pb::RemovePasswordRequest {
            user_id: id.clone(),
        })
        .await
        .unwrap();
    assert!(authenticators(&app, &id).await.password.is_none());
    assert_eq!(
        users
            .remove_password(pb::RemovePasswordRequest {
                user_id: id.clone()
            })
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

async fn totp_registers_with_a_real_code(app: TestApp) {
    let id = user(&app, "totp").await;
    let mut users = app.users.clone();
    let started = users
        .start_totp_registration(pb::StartTotpRegistrationRequest {
            user_id: id.clone(),
            name: "Phone".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        started.uri.starts_with("otpauth://totp/userdir:"),
        "{}",
        started.uri
    );
    assert!(started.uri.contains(&format!("secret={}", started.secret)));
    let totps = authenticators(&app, &id).await.totps;
    assert_eq!(
        totps,
        [pb::Totp {
            totp_id: started.totp_id.clone(),
            name: "Phone".into(),
            is_verified: false
        }]
    );

    let verify = |code: String| pb::VerifyTotpRegistrationRequest {
        user_id: id.clone(),
        totp_id: started.totp_id.clone(),
        code,
    };
    let current = userdir::domain::totp::current_code(&started.secret).unwrap();
    let wrong = format!(
        "{:06}",
        (current.parse::<u32>().unwrap() + 500_000) % 1_000_000
    );
    assert_eq!(
        users
            .verify_totp_registration(verify(wrong))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    users
        .verify_totp_registration(verify(current.clone()))
        .await
        .unwrap();
    assert!(authenticators(&app, &id).await.totps[0].is_verified);
    assert_eq!(
        users
            .verify_totp_registration(verify(current))
            .await
            .unwrap_err()
            .code(),
        Code::FailedPrecondition
    );

    let remove = pb::RemoveTotpAuthenticatorRequest {
        user_id: id.clone(),
        totp_id: started.totp_id.clone(),
    };
    users
        .remove_totp_authenticator(remove.clone())
        .await
        .unwrap();
    assert!(authenticators(&app, &id).await.totps.is_empty());
    assert_eq!(
        users
            .remove_totp_authenticator(remove)
            .await
            .unwrap_err()
            .code(),
        Code::NotFound
    );
}

async fn otp_sms_and_email_verify_with_a_code(app: TestApp) {
    let id = user(&app, "otp").await;
    let mut users = app.users.clone();
    let sms = users
        .add_otpsms_authenticator(pb::AddOtpsmsAuthenticatorRequest {
            user_id: id.clone(),
            phone: "+41790001122".into(),
            return_code: true,
        })
        .await
        .unwrap()
        .into_inner();
    let code = sms.verification_code.clone().unwrap();
    assert!(code.len() == 6 && code.chars().all(|c| c.is_ascii_digit()));
    let verify_sms = |code: &str| pb::VerifyOtpsmsRegistrationRequest {
        user_id: id.clone(),
        otp_sms_id: sms.otp_sms_id.clone(),
        code: code.into(),
    };
    let wrong = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        users
            .verify_otpsms_registration(verify_sms(wrong))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    users
        .verify_otpsms_registration(verify_sms(&code))
        .await
        .unwrap();
    assert_eq!(
        authenticators(&app, &id).await.otp_sms,
        [pb::Otpsms {
            otp_sms_id: sms.otp_sms_id.clone(),
            phone: "+41790001122".into(),
            is_verified: true
        }]
    );

    let email = users
        .add_otp_email_authenticator(pb::AddOtpEmailAuthenticatorRequest {
            user_id: id.clone(),
            address: "otp@example.com".into(),
            return_code: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(
        email.verification_code, None,
        "without returnCode the code is left for a sender"
    );
    let bad = users
        .add_otp_email_authenticator(pb::AddOtpEmailAuthenticatorRequest {
            user_id: id.clone(),
            address: "nope".into(),
            return_code: true,
        })
        .await
        .unwrap_err();
    assert_eq!(
        (bad.code(), bad.message()),
        (Code::InvalidArgument, "address: is not an email address")
    );
    assert!(!authenticators(&app, &id).await.otp_email[0].is_verified);
    users
        .remove_otp_email_authenticator(pb::RemoveOtpEmailAuthenticatorRequest {
            user_id: id.clone(),
            otp_email_id: email.otp_email_id,
        })
        .await
        .unwrap();
    users
        .remove_otpsms_authenticator(pb::RemoveOtpsmsAuthenticatorRequest {
            user_id: id.clone(),
            otp_sms_id: sms.otp_sms_id,
        })
        .await
        .unwrap();
    let auth = authenticators(&app, &id).await;
    assert!(auth.otp_email.is_empty() && auth.otp_sms.is_empty());
}

async fn authentication_keys_hand_out_the_private_key_once(app: TestApp) {
    use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey};
    use sea_orm::EntityTrait;
    let id = user(&app, "keys").await;
    let mut users = app.users.clone();
    let expires = Timestamp {
        seconds: 4_102_444_800,
        nanos: 0,
    }; // 2100-01-01
    let added = users
        .add_authentication_key(pb::AddAuthenticationKeyRequest {
            user_id: id.clone(),
            expiration_date: Some(expires),
        })
        .await
        .unwrap()
        .into_inner();
    let file: serde_json::Value = serde_json::from_slice(&added.key_content).unwrap();
    assert_eq!(file["type"], "serviceaccount");
    assert_eq!(file["keyId"], added.authentication_key_id.as_str());
    assert_eq!(file["userId"], id.as_str());
    let private = ed25519_dalek::SigningKey::from_pkcs8_pem(file["key"].as_str().unwrap()).unwrap();
    // The stored public key belongs to the handed-out private key; the private key is not stored.
    let row = userdir::store::entities::authentication_key::Entity::find_by_id(
        added.authentication_key_id.clone(),
    )
    .one(&app.db)
    .await
    .unwrap()
    .unwrap();
    let public = ed25519_dalek::VerifyingKey::from_public_key_pem(&row.public_key).unwrap();
    assert_eq!(private.verifying_key(), public);
    assert!(!row.public_key.contains("PRIVATE"));

    let keys = authenticators(&app, &id).await.authentication_keys;
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].expiration_date, Some(expires));
    assert_eq!(keys[0].r#type, pb::AuthNKeyType::AuthnKeyTypeJson as i32);

    let past = users
        .add_authentication_key(pb::AddAuthenticationKeyRequest {
            user_id: id.clone(),
            expiration_date: Some(Timestamp {
                seconds: 1,
                nanos: 0,
            }),
        })
        .await
        .unwrap_err();
    assert_eq!(
        (past.code(), past.message()),
        (
            Code::InvalidArgument,
            "expirationDate: must be in the future"
        )
    );
    users
        .remove_authentication_key(pb::RemoveAuthenticationKeyRequest {
            user_id: id.clone(),
            authentication_key_id: added.authentication_key_id,
        })
        .await
        .unwrap();
    assert!(
        authenticators(&app, &id)
            .await
            .authentication_keys
            .is_empty()
    );
}

async fn idp_links_are_unique_per_provider(app: TestApp) {
    let id = user(&app, "linked").await;
    // Links are unique per organization (tests/tenancy.rs): both users in the same one.
    let org = api::get_user(&app, &id)
        .await
        .details
        .unwrap()
        .resource_owner;
    let schema = api::person_schema(&app, "other").await;
    let other = api::create_user(&app, api::new_user(&org, &schema, "other")).await;
    let mut users = app.users.clone();
    let link = |user: &str, idp: &str, external: &str| pb::AddIdpLinkRequest {
        user_id: user.into(),
        idp_id: idp.into(),
        idp_name: "GitHub".into(),
        linked_user_id: external.into(),
        linked_username: "octocat".into(),
    };
    users.add_idp_link(link(&id, "github", "42")).await.unwrap();
    let taken = users
        .add_idp_link(link(&other, "github", "42"))
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Code::AlreadyExists);
    users
        .add_idp_link(link(&other, "gitlab", "42"))
        .await
        .unwrap();
    assert_eq!(
        authenticators(&app, &id).await.identity_providers,
        [pb::IdentityProvider {
            idp_id: "github".into(),
            idp_name: "GitHub".into(),
            user_id: "42".into(),
            username: "octocat".into()
        }]
    );
    let remove = pb::RemoveIdpLinkRequest {
        user_id: id.clone(),
        idp_id: "github".into(),
        linked_user_id: "42".into(),
    };
    users.remove_idp_link(remove.clone()).await.unwrap();
    assert_eq!(
        users.remove_idp_link(remove).await.unwrap_err().code(),
        Code::NotFound
    );
    users
        .add_idp_link(link(&other, "github", "42"))
        .await
        .unwrap();
}

async fn webauthn_registers_a_software_passkey(app: TestApp) {
    use webauthn_authenticator_rs::WebauthnAuthenticator;
    use webauthn_authenticator_rs::softpasskey::SoftPasskey;
    use webauthn_rs::prelude::{CreationChallengeResponse, Url};

    let id = user(&app, "passkey").await;
    let mut users = app.users.clone();
    let started = users
        .start_web_auth_n_registration(pb::StartWebAuthNRegistrationRequest {
            user_id: id.clone(),
            name: "Laptop".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let options = json_of(
        started
            .public_key_credential_creation_options
            .as_ref()
            .unwrap(),
    );
    assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
    let pending = authenticators(&app, &id).await.web_auth_n;
    assert_eq!(
        pending,
        [pb::WebAuthN {
            web_auth_n_id: started.web_auth_n_id.clone(),
            name: "Laptop".into(),
            is_verified: false,
            user_verified: false
        }]
    );

    let options: CreationChallengeResponse = serde_json::from_value(options).unwrap();
    let mut authenticator = SoftPasskey::new(true);
    let credential = authenticator
        .do_registration(Url::parse("http://localhost:8080").unwrap(), options)
        .unwrap();
    let credential = object(serde_json::to_value(&credential).unwrap());

    // An attestation for another challenge is rejected.
    let other = users
        .start_web_auth_n_registration(pb::StartWebAuthNRegistrationRequest {
            user_id: id.clone(),
            name: "Other".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let mismatch = users
        .verify_web_auth_n_registration(pb::VerifyWebAuthNRegistrationRequest {
            user_id: id.clone(),
            web_auth_n_id: other.web_auth_n_id.clone(),
            public_key_credential: Some(credential.clone()),
            name: None,
        })
        .await
        .unwrap_err();
    assert_eq!(mismatch.code(), Code::InvalidArgument);
    assert!(
        mismatch.message().starts_with("publicKeyCredential: "),
        "{}",
        mismatch.message()
    );

    users
        .verify_web_auth_n_registration(pb::VerifyWebAuthNRegistrationRequest {
            user_id: id.clone(),
            web_auth_n_id: started.web_auth_n_id.clone(),
            public_key_credential: Some(credential),
            name: Some("MacBook".into()),
        })
        .await
        .unwrap();
    users
        .rename_web_auth_n_authenticator(pb::RenameWebAuthNAuthenticatorRequest {
            user_id: id.clone(),
            web_auth_n_id: started.web_auth_n_id.clone(),
            name: "Work laptop".into(),
        })
        .await
        .unwrap();
    let registered = authenticators(&app, &id).await.web_auth_n;
    assert_eq!(
        registered[0],
        pb::WebAuthN {
            web_auth_n_id: started.web_auth_n_id.clone(),
            name: "Work laptop".into(),
            is_verified: true,
            user_verified: true
        }
    );
    users
        .remove_web_auth_n_authenticator(pb::RemoveWebAuthNAuthenticatorRequest {
            user_id: id.clone(),
            web_auth_n_id: started.web_auth_n_id,
        })
        .await
        .unwrap();
    assert_eq!(
        authenticators(&app, &id).await.web_auth_n.len(),
        1,
        "only the unfinished registration is left"
    );
}
