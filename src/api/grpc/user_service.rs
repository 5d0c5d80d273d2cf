use std::sync::Arc;

use tonic::{Request, Response, Status};
use webauthn_rs::Webauthn;

use super::{ServiceState, convert, import, pages, parse, search};
use crate::command::authenticators::{self as auth, NewUsername, OtpChannel, Removable};
use crate::command::contact::{self, ContactKind};
use crate::command::users::{self as user_commands, UserPatch};
use crate::command::webauthn;
use crate::domain::StateChange;
use crate::error::Error;
use crate::limits::hashing::Hashing;
use crate::proto::user::v1 as pb;
use crate::proto::user::v1::user_service_server::UserService;
use crate::store::ScopedDb;
use crate::store::reads::users;
use crate::store::writes::unit::Written;

type Answer<T> = Result<Response<T>, Status>;

/// `userdir.user.v1.UserService` over the directory.
#[derive(Clone)]
pub struct UserDirectory {
    state: ServiceState,
    webauthn: Arc<Webauthn>,
    /// Every service that hashes or verifies passwords shares one server-wide bound.
    hashing: Hashing,
}

impl UserDirectory {
    pub fn new(state: ServiceState, webauthn: Arc<Webauthn>, hashing: Hashing) -> Self {
        Self {
            state,
            webauthn,
            hashing,
        }
    }

    /// Longest name, username or email address.
    fn max_text(&self) -> usize {
        self.state.max_text()
    }

    async fn change_state(
        db: &ScopedDb,
        user_id: &str,
        change: StateChange,
    ) -> Result<Written, Status> {
        let user_id = parse::id(user_id, "userId")?;
        Ok(user_commands::change_state(db, user_id, change).await?)
    }
}

fn details(written: &Written) -> Option<pb::Details> {
    Some(convert::written(written))
}

fn user_id(value: &str) -> Result<&str, Error> {
    parse::id(value, "userId")
}

#[tonic::async_trait]
impl UserService for UserDirectory {
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Answer<pb::ListUsersResponse> {
        let db = self.state.scoped(&request)?;
        let token = search::page_token(request.get_ref().query.as_ref(), &self.state.page_tokens)?;
        let search = search::parse_list_users(
            request.get_ref(),
            self.state.pages,
            self.state.limits.query(),
        )?;
        Ok(Response::new(
            pages::users_page(&self.state, &db, search, token).await?,
        ))
    }

    async fn get_user(&self, request: Request<pb::GetUserRequest>) -> Answer<pb::GetUserResponse> {
        let db = self.state.scoped(&request)?;
        let id = user_id(&request.get_ref().user_id)?;
        let user = users::get_user(&db, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| crate::command::user_not_found(id))?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(convert::user(user)),
        }))
    }

    async fn create_user(
        &self,
        request: Request<pb::CreateUserRequest>,
    ) -> Answer<pb::CreateUserResponse> {
        let db = self.state.scoped(&request)?;
        let new = parse::new_user(request.get_ref().into(), self.max_text())?;
        let created = user_commands::create(&db, &self.hashing, new).await?;
        Ok(Response::new(pb::CreateUserResponse {
            user_id: created.user_id,
            details: details(&created.written),
            email_code: created.email_code,
            phone_code: created.phone_code,
        }))
    }

    async fn patch_user(
        &self,
        request: Request<pb::PatchUserRequest>,
    ) -> Answer<pb::PatchUserResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.into_inner();
        let id = user_id(&r.user_id)?;
        let contact = r.contact.unwrap_or_default();
        let patch = UserPatch {
            data: r
                .data
                .as_ref()
                .map(|data| parse::user_data(data, self.max_text()))
                .transpose()?,
            email: contact
                .email
                .as_ref()
                .map(|e| parse::set_email(e, "contact.email", self.max_text()))
                .transpose()?,
            phone: contact
                .phone
                .as_ref()
                .map(|p| parse::set_phone(p, "contact.phone"))
                .transpose()?,
        };
        let patched = user_commands::patch(&db, id, patch).await?;
        Ok(Response::new(pb::PatchUserResponse {
            details: details(&patched.written),
            email_code: patched.email_code,
            phone_code: patched.phone_code,
        }))
    }

    async fn delete_user(
        &self,
        request: Request<pb::DeleteUserRequest>,
    ) -> Answer<pb::DeleteUserResponse> {
        let db = self.state.scoped(&request)?;
        let written = user_commands::delete(&db, user_id(&request.get_ref().user_id)?).await?;
        Ok(Response::new(pb::DeleteUserResponse {
            details: details(&written),
        }))
    }

    async fn deactivate_user(
        &self,
        request: Request<pb::DeactivateUserRequest>,
    ) -> Answer<pb::DeactivateUserResponse> {
        let db = self.state.scoped(&request)?;
        let written =
            Self::change_state(&db, &request.get_ref().user_id, StateChange::Deactivate).await?;
        Ok(Response::new(pb::DeactivateUserResponse {
            details: details(&written),
        }))
    }

    async fn reactivate_user(
        &self,
        request: Request<pb::ReactivateUserRequest>,
    ) -> Answer<pb::ReactivateUserResponse> {
        let db = self.state.scoped(&request)?;
        let written =
            Self::change_state(&db, &request.get_ref().user_id, StateChange::Reactivate).await?;
        Ok(Response::new(pb::ReactivateUserResponse {
            details: details(&written),
        }))
    }

    async fn lock_user(
        &self,
        request: Request<pb::LockUserRequest>,
    ) -> Answer<pb::LockUserResponse> {
        let db = self.state.scoped(&request)?;
        let written =
            Self::change_state(&db, &request.get_ref().user_id, StateChange::Lock).await?;
        Ok(Response::new(pb::LockUserResponse {
            details: details(&written),
        }))
    }

    async fn unlock_user(
        &self,
        request: Request<pb::UnlockUserRequest>,
    ) -> Answer<pb::UnlockUserResponse> {
        let db = self.state.scoped(&request)?;
        let written =
            Self::change_state(&db, &request.get_ref().user_id, StateChange::Unlock).await?;
        Ok(Response::new(pb::UnlockUserResponse {
            details: details(&written),
        }))
    }

    async fn set_contact_email(
        &self,
        request: Request<pb::SetContactEmailRequest>,
    ) -> Answer<pb::SetContactEmailResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.into_inner();
        let id = user_id(&r.user_id)?;
        let email = r
            .email
            .as_ref()
            .ok_or_else(|| Error::invalid("email", "is required"))?;
        let (written, code) = contact::set(
            &db,
            id,
            ContactKind::Email,
            parse::set_email(email, "email", self.max_text())?,
        )
        .await?;
        Ok(Response::new(pb::SetContactEmailResponse {
            details: details(&written),
            verification_code: code,
        }))
    }

    async fn verify_contact_email(
        &self,
        request: Request<pb::VerifyContactEmailRequest>,
    ) -> Answer<pb::VerifyContactEmailResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let code = parse::code(&r.verification_code, "verificationCode")?;
        let written = contact::verify(&db, user_id(&r.user_id)?, ContactKind::Email, &code).await?;
        Ok(Response::new(pb::VerifyContactEmailResponse {
            details: details(&written),
        }))
    }

    async fn set_contact_phone(
        &self,
        request: Request<pb::SetContactPhoneRequest>,
    ) -> Answer<pb::SetContactPhoneResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.into_inner();
        let id = user_id(&r.user_id)?;
        let phone = r
            .phone
            .as_ref()
            .ok_or_else(|| Error::invalid("phone", "is required"))?;
        let (written, code) = contact::set(
            &db,
            id,
            ContactKind::Phone,
            parse::set_phone(phone, "phone")?,
        )
        .await?;
        Ok(Response::new(pb::SetContactPhoneResponse {
            details: details(&written),
            verification_code: code,
        }))
    }

    async fn verify_contact_phone(
        &self,
        request: Request<pb::VerifyContactPhoneRequest>,
    ) -> Answer<pb::VerifyContactPhoneResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let code = parse::code(&r.verification_code, "verificationCode")?;
        let written = contact::verify(&db, user_id(&r.user_id)?, ContactKind::Phone, &code).await?;
        Ok(Response::new(pb::VerifyContactPhoneResponse {
            details: details(&written),
        }))
    }

    async fn add_username(
        &self,
        request: Request<pb::AddUsernameRequest>,
    ) -> Answer<pb::AddUsernameResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let name = r
            .username
            .as_ref()
            .ok_or_else(|| Error::invalid("username", "is required"))?;
        let name = NewUsername {
            username: parse::name(&name.username, "username.username", self.max_text())?,
            organization_specific: name.is_organization_specific,
        };
        let (username_id, written) = auth::add_username(&db, id, name).await?;
        Ok(Response::new(pb::AddUsernameResponse {
            username_id,
            details: details(&written),
        }))
    }

    async fn remove_username(
        &self,
        request: Request<pb::RemoveUsernameRequest>,
    ) -> Answer<pb::RemoveUsernameResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = auth::remove_username(
            &db,
            user_id(&r.user_id)?,
            parse::id(&r.username_id, "usernameId")?,
        )
        .await?;
        Ok(Response::new(pb::RemoveUsernameResponse {
            details: details(&written),
        }))
    }

    async fn set_password(
        &self,
        request: Request<pb::SetPasswordRequest>,
    ) -> Answer<pb::SetPasswordResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let password = r
            .new_password
            .as_ref()
            .ok_or_else(|| Error::invalid("newPassword", "is required"))?;
        let password = parse::new_password(password, "newPassword")?;
        let written = auth::set_password(&db, &self.hashing, id, password).await?;
        Ok(Response::new(pb::SetPasswordResponse {
            details: details(&written),
        }))
    }

    async fn remove_password(
        &self,
        request: Request<pb::RemovePasswordRequest>,
    ) -> Answer<pb::RemovePasswordResponse> {
        let db = self.state.scoped(&request)?;
        let written = auth::remove_password(&db, user_id(&request.get_ref().user_id)?).await?;
        Ok(Response::new(pb::RemovePasswordResponse {
            details: details(&written),
        }))
    }

    async fn verify_password(
        &self,
        request: Request<pb::VerifyPasswordRequest>,
    ) -> Answer<pb::VerifyPasswordResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        parse::password_text(&r.password, "password", 1, 200)?;
        let check = auth::verify_password(&db, &self.hashing, id, &r.password).await?;
        Ok(Response::new(pb::VerifyPasswordResponse {
            details: details(&check.written),
            last_login: Some(convert::timestamp(check.last_login)),
            change_required: check.change_required,
        }))
    }

    async fn start_web_auth_n_registration(
        &self,
        request: Request<pb::StartWebAuthNRegistrationRequest>,
    ) -> Answer<pb::StartWebAuthNRegistrationResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let name = parse::name(&r.name, "name", self.max_text())?;
        let (web_auth_n_id, options, written) =
            webauthn::start(&db, &self.webauthn, id, name).await?;
        Ok(Response::new(pb::StartWebAuthNRegistrationResponse {
            web_auth_n_id,
            public_key_credential_creation_options: convert::json_object(options),
            details: details(&written),
        }))
    }

    async fn verify_web_auth_n_registration(
        &self,
        request: Request<pb::VerifyWebAuthNRegistrationRequest>,
    ) -> Answer<pb::VerifyWebAuthNRegistrationResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let web_auth_n_id = parse::id(&r.web_auth_n_id, "webAuthNId")?;
        let credential = r
            .public_key_credential
            .as_ref()
            .map(|credential| parse::json(credential, "publicKeyCredential"))
            .ok_or_else(|| Error::invalid("publicKeyCredential", "is required"))??;
        let name = r
            .name
            .as_deref()
            .map(|n| parse::name(n, "name", self.max_text()))
            .transpose()?;
        let written =
            webauthn::verify(&db, &self.webauthn, id, web_auth_n_id, credential, name).await?;
        Ok(Response::new(pb::VerifyWebAuthNRegistrationResponse {
            details: details(&written),
        }))
    }

    async fn rename_web_auth_n_authenticator(
        &self,
        request: Request<pb::RenameWebAuthNAuthenticatorRequest>,
    ) -> Answer<pb::RenameWebAuthNAuthenticatorResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = webauthn::rename(
            &db,
            user_id(&r.user_id)?,
            parse::id(&r.web_auth_n_id, "webAuthNId")?,
            parse::name(&r.name, "name", self.max_text())?,
        )
        .await?;
        Ok(Response::new(pb::RenameWebAuthNAuthenticatorResponse {
            details: details(&written),
        }))
    }

    async fn remove_web_auth_n_authenticator(
        &self,
        request: Request<pb::RemoveWebAuthNAuthenticatorRequest>,
    ) -> Answer<pb::RemoveWebAuthNAuthenticatorResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = auth::remove(
            &db,
            user_id(&r.user_id)?,
            Removable::WebAuthN,
            parse::id(&r.web_auth_n_id, "webAuthNId")?,
        )
        .await?;
        Ok(Response::new(pb::RemoveWebAuthNAuthenticatorResponse {
            details: details(&written),
        }))
    }

    async fn start_totp_registration(
        &self,
        request: Request<pb::StartTotpRegistrationRequest>,
    ) -> Answer<pb::StartTotpRegistrationResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let name = parse::totp_name(&r.name, "name", self.max_text())?;
        let started = auth::start_totp(&db, id, name).await?;
        Ok(Response::new(pb::StartTotpRegistrationResponse {
            totp_id: started.id,
            uri: started.uri,
            secret: started.secret,
            details: details(&started.written),
        }))
    }

    async fn verify_totp_registration(
        &self,
        request: Request<pb::VerifyTotpRegistrationRequest>,
    ) -> Answer<pb::VerifyTotpRegistrationResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let code = parse::code(&r.code, "code")?;
        let written = auth::verify_totp(
            &db,
            user_id(&r.user_id)?,
            parse::id(&r.totp_id, "totpId")?,
            &code,
        )
        .await?;
        Ok(Response::new(pb::VerifyTotpRegistrationResponse {
            details: details(&written),
        }))
    }

    async fn remove_totp_authenticator(
        &self,
        request: Request<pb::RemoveTotpAuthenticatorRequest>,
    ) -> Answer<pb::RemoveTotpAuthenticatorResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = auth::remove(
            &db,
            user_id(&r.user_id)?,
            Removable::Totp,
            parse::id(&r.totp_id, "totpId")?,
        )
        .await?;
        Ok(Response::new(pb::RemoveTotpAuthenticatorResponse {
            details: details(&written),
        }))
    }

    async fn add_otpsms_authenticator(
        &self,
        request: Request<pb::AddOtpsmsAuthenticatorRequest>,
    ) -> Answer<pb::AddOtpsmsAuthenticatorResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let phone = parse::phone(&r.phone, "phone")?;
        let (otp_sms_id, written, code) =
            auth::add_otp(&db, id, OtpChannel::Sms, phone, r.return_code).await?;
        Ok(Response::new(pb::AddOtpsmsAuthenticatorResponse {
            otp_sms_id,
            details: details(&written),
            verification_code: code,
        }))
    }

    async fn verify_otpsms_registration(
        &self,
        request: Request<pb::VerifyOtpsmsRegistrationRequest>,
    ) -> Answer<pb::VerifyOtpsmsRegistrationResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let code = parse::code(&r.code, "code")?;
        let written = auth::verify_otp(
            &db,
            user_id(&r.user_id)?,
            OtpChannel::Sms,
            parse::id(&r.otp_sms_id, "otpSmsId")?,
            &code,
        )
        .await?;
        Ok(Response::new(pb::VerifyOtpsmsRegistrationResponse {
            details: details(&written),
        }))
    }

    async fn remove_otpsms_authenticator(
        &self,
        request: Request<pb::RemoveOtpsmsAuthenticatorRequest>,
    ) -> Answer<pb::RemoveOtpsmsAuthenticatorResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = auth::remove(
            &db,
            user_id(&r.user_id)?,
            Removable::OtpSms,
            parse::id(&r.otp_sms_id, "otpSmsId")?,
        )
        .await?;
        Ok(Response::new(pb::RemoveOtpsmsAuthenticatorResponse {
            details: details(&written),
        }))
    }

    async fn add_otp_email_authenticator(
        &self,
        request: Request<pb::AddOtpEmailAuthenticatorRequest>,
    ) -> Answer<pb::AddOtpEmailAuthenticatorResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let address = parse::email(&r.address, "address", self.max_text())?;
        let (otp_email_id, written, code) =
            auth::add_otp(&db, id, OtpChannel::Email, address, r.return_code).await?;
        Ok(Response::new(pb::AddOtpEmailAuthenticatorResponse {
            otp_email_id,
            details: details(&written),
            verification_code: code,
        }))
    }

    async fn verify_otp_email_registration(
        &self,
        request: Request<pb::VerifyOtpEmailRegistrationRequest>,
    ) -> Answer<pb::VerifyOtpEmailRegistrationResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let code = parse::code(&r.code, "code")?;
        let written = auth::verify_otp(
            &db,
            user_id(&r.user_id)?,
            OtpChannel::Email,
            parse::id(&r.otp_email_id, "otpEmailId")?,
            &code,
        )
        .await?;
        Ok(Response::new(pb::VerifyOtpEmailRegistrationResponse {
            details: details(&written),
        }))
    }

    async fn remove_otp_email_authenticator(
        &self,
        request: Request<pb::RemoveOtpEmailAuthenticatorRequest>,
    ) -> Answer<pb::RemoveOtpEmailAuthenticatorResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = auth::remove(
            &db,
            user_id(&r.user_id)?,
            Removable::OtpEmail,
            parse::id(&r.otp_email_id, "otpEmailId")?,
        )
        .await?;
        Ok(Response::new(pb::RemoveOtpEmailAuthenticatorResponse {
            details: details(&written),
        }))
    }

    async fn add_authentication_key(
        &self,
        request: Request<pb::AddAuthenticationKeyRequest>,
    ) -> Answer<pb::AddAuthenticationKeyResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let expiration = r
            .expiration_date
            .as_ref()
            .map(|t| parse::timestamp(t, "expirationDate"))
            .transpose()?;
        let added = auth::add_key(&db, id, expiration).await?;
        Ok(Response::new(pb::AddAuthenticationKeyResponse {
            authentication_key_id: added.id,
            key_content: added.key_file,
            details: details(&added.written),
        }))
    }

    async fn remove_authentication_key(
        &self,
        request: Request<pb::RemoveAuthenticationKeyRequest>,
    ) -> Answer<pb::RemoveAuthenticationKeyResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = auth::remove(
            &db,
            user_id(&r.user_id)?,
            Removable::AuthenticationKey,
            parse::id(&r.authentication_key_id, "authenticationKeyId")?,
        )
        .await?;
        Ok(Response::new(pb::RemoveAuthenticationKeyResponse {
            details: details(&written),
        }))
    }

    async fn add_idp_link(
        &self,
        request: Request<pb::AddIdpLinkRequest>,
    ) -> Answer<pb::AddIdpLinkResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = user_id(&r.user_id)?;
        let link = parse::idp_link(
            "",
            &r.idp_id,
            &r.idp_name,
            &r.linked_user_id,
            &r.linked_username,
            self.max_text(),
        )?;
        let written = auth::add_idp_link(&db, id, link).await?;
        Ok(Response::new(pb::AddIdpLinkResponse {
            details: details(&written),
        }))
    }

    async fn remove_idp_link(
        &self,
        request: Request<pb::RemoveIdpLinkRequest>,
    ) -> Answer<pb::RemoveIdpLinkResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = auth::remove_idp_link(
            &db,
            user_id(&r.user_id)?,
            parse::id(&r.idp_id, "idpId")?,
            parse::id(&r.linked_user_id, "linkedUserId")?,
        )
        .await?;
        Ok(Response::new(pb::RemoveIdpLinkResponse {
            details: details(&written),
        }))
    }

    async fn import_users(
        &self,
        request: Request<tonic::Streaming<pb::ImportUserRecord>>,
    ) -> Answer<pb::ImportUsersResponse> {
        let db = self.state.scoped(&request)?;
        let response = import::import_stream(db, request.into_inner(), self.max_text()).await?;
        Ok(Response::new(response))
    }
}
