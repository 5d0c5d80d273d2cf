use sea_orm::DatabaseConnection;
use tonic::{Request, Response, Status};

use super::convert;
use crate::error::Error;
use crate::proto::user::v1 as pb;
use crate::proto::user::v1::user_service_server::UserService;
use crate::query::PageLimits;
use crate::query::dialect::zitadel;
use crate::store::reads::users;

/// `userdir.user.v1.UserService` over the directory.
#[derive(Clone)]
pub struct UserDirectory {
    db: DatabaseConnection,
    limits: PageLimits,
}

impl UserDirectory {
    pub fn new(db: DatabaseConnection, limits: PageLimits) -> Self {
        Self { db, limits }
    }
}

#[tonic::async_trait]
impl UserService for UserDirectory {
    async fn list_users(
        &self,
        request: Request<pb::ListUsersRequest>,
    ) -> Result<Response<pb::ListUsersResponse>, Status> {
        let search = zitadel::parse_list_users(request.get_ref(), self.limits)?;
        let page = users::list_users(&self.db, &search)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::ListUsersResponse {
            details: Some(convert::list_details(page.total, page.processed)),
            sorting_column: zitadel::field_name(search.sort).into(),
            result: page.users.into_iter().map(convert::user).collect(),
        }))
    }

    async fn get_user(
        &self,
        request: Request<pb::GetUserRequest>,
    ) -> Result<Response<pb::GetUserResponse>, Status> {
        let id = zitadel::user_id(&request.get_ref().user_id, "userId")?;
        let user = users::get_user(&self.db, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("userId: no user with id {id:?}")))?;
        Ok(Response::new(pb::GetUserResponse {
            user: Some(convert::user(user)),
        }))
    }
}
