//! `userdir.user.v1.TokenService`: personal access tokens over the directory.

use tonic::{Request, Response, Status};

use super::directory_service::{list_details, paging};
use super::{ServiceState, convert, parse};
use crate::auth::{Grant, Permission, Principal};
use crate::command::tokens::{self as commands, Minter, NewToken};
use crate::domain::Timestamp;
use crate::error::Error;
use crate::proto::user::v1 as pb;
use crate::proto::user::v1::token_service_server::TokenService;
use crate::store::entities::access_token;
use crate::store::reads::tokens as reads;

type Answer<T> = Result<Response<T>, Status>;

#[derive(Clone)]
pub struct AccessTokens {
    state: ServiceState,
}

impl AccessTokens {
    pub fn new(state: ServiceState) -> Self {
        Self { state }
    }
}

fn grant(admin: bool, permissions: &[String]) -> Result<Grant, Error> {
    match (admin, permissions.is_empty()) {
        (true, true) => Ok(Grant::Admin),
        (true, false) => Err(Error::invalid(
            "permissions",
            "must be empty when admin is true",
        )),
        (false, true) => Err(Error::invalid(
            "permissions",
            "name at least one permission, or set admin",
        )),
        (false, false) => permissions
            .iter()
            .enumerate()
            .map(|(i, name)| {
                name.parse::<Permission>()
                    .map_err(|e| Error::invalid(format!("permissions[{i}]"), e.to_string()))
            })
            .collect::<Result<_, _>>()
            .map(Grant::Permissions),
    }
}

/// The caller, as the auth layer established it.
fn principal<T>(request: &Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated(crate::auth::UNAUTHENTICATED))
}

pub(super) fn access_token(row: access_token::Model) -> pb::AccessToken {
    let grant =
        Grant::from_names(&row.permissions).unwrap_or(Grant::Permissions(Default::default()));
    let (admin, permissions) = match grant {
        Grant::Admin => (true, Vec::new()),
        Grant::Permissions(set) => (false, set.iter().map(|p| p.name().to_owned()).collect()),
    };
    let time = |micros: i64| convert::timestamp(Timestamp::from_micros(micros));
    pb::AccessToken {
        details: Some(convert::details(
            row.sequence,
            Timestamp::from_micros(row.revoked_at.unwrap_or(row.created_at)),
            row.organization_id.as_deref().unwrap_or_default(),
        )),
        token_id: row.id,
        description: row.description,
        admin,
        permissions,
        organization_id: row.organization_id.unwrap_or_default(),
        creation_date: Some(time(row.created_at)),
        expiration_date: row.expires_at.map(time),
        revocation_date: row.revoked_at.map(time),
        bootstrap: row.bootstrap,
        created_by: row.created_by,
    }
}

#[tonic::async_trait]
impl TokenService for AccessTokens {
    async fn create_access_token(
        &self,
        request: Request<pb::CreateAccessTokenRequest>,
    ) -> Answer<pb::CreateAccessTokenResponse> {
        let db = self.state.scoped(&request)?;
        let principal = principal(&request)?;
        let r = request.into_inner();
        let new = NewToken {
            description: parse::text(&r.description, "description", 1, 200)?,
            grant: grant(r.admin, &r.permissions)?,
            organization_id: r
                .organization_id
                .as_deref()
                .map(|id| parse::id(id, "organizationId").map(str::to_owned))
                .transpose()?,
            expires_at: r
                .expiration_date
                .as_ref()
                .map(|t| parse::timestamp(t, "expirationDate"))
                .transpose()?,
        };
        let minted = commands::create(&db, Minter::Caller(&principal), new).await?;
        Ok(Response::new(pb::CreateAccessTokenResponse {
            details: Some(convert::written(&minted.written)),
            token_id: minted.id,
            token: minted.secret,
        }))
    }

    async fn list_access_tokens(
        &self,
        request: Request<pb::ListAccessTokensRequest>,
    ) -> Answer<pb::ListAccessTokensResponse> {
        let db = self.state.scoped(&request)?;
        let paging = paging(request.into_inner().query, self.state.pages)?;
        let page = reads::list(&db, paging).await.map_err(Error::from)?;
        Ok(Response::new(pb::ListAccessTokensResponse {
            details: list_details(&page),
            result: page.items.into_iter().map(access_token).collect(),
        }))
    }

    async fn revoke_access_token(
        &self,
        request: Request<pb::RevokeAccessTokenRequest>,
    ) -> Answer<pb::RevokeAccessTokenResponse> {
        let db = self.state.scoped(&request)?;
        let principal = principal(&request)?;
        let id = parse::id(&request.get_ref().token_id, "tokenId")?;
        let revoked = commands::revoke(&db, Minter::Caller(&principal), id).await?;
        Ok(Response::new(pb::RevokeAccessTokenResponse {
            details: Some(convert::written(&revoked.written)),
        }))
    }
}
