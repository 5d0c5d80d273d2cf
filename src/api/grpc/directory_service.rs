//! Organizations, user schemas and roles.

use tonic::{Request, Response, Status};

use super::{ServiceState, convert, pages, parse, search};
use crate::command::directory as commands;
use crate::error::Error;
use crate::proto::user::v1 as pb;
use crate::proto::user::v1::organization_service_server::OrganizationService;
use crate::proto::user::v1::role_service_server::RoleService;
use crate::proto::user::v1::user_schema_service_server::UserSchemaService;
use crate::query::{Filter, PageLimits, Query};
use crate::store::entities::{organization, role, user_schema};
use crate::store::reads::directory::{self as reads, Paging};

type Answer<T> = Result<Response<T>, Status>;

/// The paging of a list that pages by offset only: a page token there is InvalidArgument rather
/// than silently the first page again.
pub(super) fn paging(query: Option<pb::ListQuery>, pages: PageLimits) -> Result<Paging, Error> {
    if query
        .as_ref()
        .is_some_and(|page| !page.page_token.is_empty())
    {
        return Err(Error::invalid(
            crate::query::page_token::FIELD,
            "this list pages by query.offset only",
        ));
    }
    let (offset, limit, ascending) = search::paging(query.as_ref(), pages)?;
    Ok(Paging {
        offset,
        limit,
        ascending,
    })
}

pub(super) fn list_details<T>(page: &reads::Page<T>) -> Option<pb::ListDetails> {
    Some(convert::list_details(page.total, page.processed))
}

#[derive(Clone)]
pub struct Organizations {
    state: ServiceState,
}

impl Organizations {
    pub fn new(state: ServiceState) -> Self {
        Self { state }
    }
}

fn organization(row: organization::Model) -> pb::Organization {
    pb::Organization {
        details: Some(convert::details(
            row.sequence,
            crate::domain::Timestamp::from_micros(row.changed_at),
            &row.id,
        )),
        creation_date: Some(convert::timestamp(crate::domain::Timestamp::from_micros(
            row.created_at,
        ))),
        organization_id: row.id,
        name: row.name,
    }
}

#[tonic::async_trait]
impl OrganizationService for Organizations {
    async fn create_organization(
        &self,
        request: Request<pb::CreateOrganizationRequest>,
    ) -> Answer<pb::CreateOrganizationResponse> {
        let db = self.state.scoped(&request)?;
        let name = parse::name(&request.get_ref().name, "name", self.state.max_text())?;
        let (organization_id, written) = commands::create_organization(&db, name).await?;
        Ok(Response::new(pb::CreateOrganizationResponse {
            organization_id,
            details: Some(convert::written(&written)),
        }))
    }

    async fn get_organization(
        &self,
        request: Request<pb::GetOrganizationRequest>,
    ) -> Answer<pb::GetOrganizationResponse> {
        let db = self.state.scoped(&request)?;
        let id = parse::id(&request.get_ref().organization_id, "organizationId")?;
        let row = reads::organization(&db, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| {
                Error::NotFound(format!("organizationId: no organization with id {id:?}"))
            })?;
        Ok(Response::new(pb::GetOrganizationResponse {
            organization: Some(organization(row)),
        }))
    }

    async fn list_organizations(
        &self,
        request: Request<pb::ListOrganizationsRequest>,
    ) -> Answer<pb::ListOrganizationsResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.into_inner();
        let paging = paging(r.query, self.state.pages)?;
        let name = match &r.name_query {
            Some(q) => Some(search::text(
                &q.name,
                q.method,
                "nameQuery",
                "name",
                search::name_length(self.state.max_text()),
            )?),
            None => None,
        };
        let page = reads::organizations(&db, name.as_ref(), paging)
            .await
            .map_err(Error::from)?;
        Ok(Response::new(pb::ListOrganizationsResponse {
            details: list_details(&page),
            result: page.items.into_iter().map(organization).collect(),
        }))
    }
}

#[derive(Clone)]
pub struct UserSchemas {
    state: ServiceState,
}

impl UserSchemas {
    pub fn new(state: ServiceState) -> Self {
        Self { state }
    }
}

fn user_schema(row: user_schema::Model) -> pb::UserSchema {
    pb::UserSchema {
        details: Some(convert::details(
            row.sequence,
            crate::domain::Timestamp::from_micros(row.changed_at),
            "",
        )),
        creation_date: Some(convert::timestamp(crate::domain::Timestamp::from_micros(
            row.created_at,
        ))),
        schema_id: row.id,
        r#type: row.r#type,
        revision: u32::try_from(row.revision).unwrap_or_default(),
        schema: convert::json_object(row.json_schema),
    }
}

#[tonic::async_trait]
impl UserSchemaService for UserSchemas {
    async fn create_user_schema(
        &self,
        request: Request<pb::CreateUserSchemaRequest>,
    ) -> Answer<pb::CreateUserSchemaResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let schema_type = parse::name(&r.r#type, "type", self.state.max_text())?;
        let schema = r
            .schema
            .as_ref()
            .map(|schema| parse::json(schema, "schema"))
            .ok_or_else(|| Error::invalid("schema", "is required"))??;
        let (schema_id, written) = commands::create_schema(&db, schema_type, schema).await?;
        Ok(Response::new(pb::CreateUserSchemaResponse {
            schema_id,
            details: Some(convert::written(&written)),
            revision: 1,
        }))
    }

    async fn update_user_schema(
        &self,
        request: Request<pb::UpdateUserSchemaRequest>,
    ) -> Answer<pb::UpdateUserSchemaResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = parse::id(&r.schema_id, "schemaId")?;
        let schema_type = r
            .r#type
            .as_deref()
            .map(|t| parse::name(t, "type", self.state.max_text()))
            .transpose()?;
        let schema = r
            .schema
            .as_ref()
            .map(|schema| parse::json(schema, "schema"))
            .transpose()?;
        let (revision, written) = commands::update_schema(&db, id, schema_type, schema).await?;
        Ok(Response::new(pb::UpdateUserSchemaResponse {
            details: Some(convert::written(&written)),
            revision: u32::try_from(revision).unwrap_or_default(),
        }))
    }

    async fn get_user_schema(
        &self,
        request: Request<pb::GetUserSchemaRequest>,
    ) -> Answer<pb::GetUserSchemaResponse> {
        let db = self.state.scoped(&request)?;
        let id = parse::id(&request.get_ref().schema_id, "schemaId")?;
        let row = reads::schema(&db, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| Error::NotFound(format!("schemaId: no user schema with id {id:?}")))?;
        Ok(Response::new(pb::GetUserSchemaResponse {
            schema: Some(user_schema(row)),
        }))
    }

    async fn list_user_schemas(
        &self,
        request: Request<pb::ListUserSchemasRequest>,
    ) -> Answer<pb::ListUserSchemasResponse> {
        let db = self.state.scoped(&request)?;
        let paging = paging(request.into_inner().query, self.state.pages)?;
        let page = reads::schemas(&db, paging).await.map_err(Error::from)?;
        Ok(Response::new(pb::ListUserSchemasResponse {
            details: list_details(&page),
            result: page.items.into_iter().map(user_schema).collect(),
        }))
    }
}

#[derive(Clone)]
pub struct Roles {
    state: ServiceState,
}

impl Roles {
    pub fn new(state: ServiceState) -> Self {
        Self { state }
    }
}

fn role(row: role::Model) -> pb::Role {
    pb::Role {
        details: Some(convert::details(
            row.sequence,
            crate::domain::Timestamp::from_micros(row.changed_at),
            "",
        )),
        creation_date: Some(convert::timestamp(crate::domain::Timestamp::from_micros(
            row.created_at,
        ))),
        role_id: row.id,
        name: row.name,
        description: row.description,
    }
}

fn role_not_found(id: &str) -> Error {
    Error::NotFound(format!("roleId: no role with id {id:?}"))
}

#[tonic::async_trait]
impl RoleService for Roles {
    async fn create_role(
        &self,
        request: Request<pb::CreateRoleRequest>,
    ) -> Answer<pb::CreateRoleResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let name = parse::name(&r.name, "name", self.state.max_text())?;
        let description = parse::text(&r.description, "description", 0, 1000)?;
        let (role_id, written) = commands::create_role(&db, name, description).await?;
        Ok(Response::new(pb::CreateRoleResponse {
            role_id,
            details: Some(convert::written(&written)),
        }))
    }

    async fn get_role(&self, request: Request<pb::GetRoleRequest>) -> Answer<pb::GetRoleResponse> {
        let db = self.state.scoped(&request)?;
        let id = parse::id(&request.get_ref().role_id, "roleId")?;
        let row = reads::role(&db, id)
            .await
            .map_err(Error::from)?
            .ok_or_else(|| role_not_found(id))?;
        Ok(Response::new(pb::GetRoleResponse {
            role: Some(role(row)),
        }))
    }

    async fn list_roles(
        &self,
        request: Request<pb::ListRolesRequest>,
    ) -> Answer<pb::ListRolesResponse> {
        let db = self.state.scoped(&request)?;
        let paging = paging(request.into_inner().query, self.state.pages)?;
        let page = reads::roles(&db, paging).await.map_err(Error::from)?;
        Ok(Response::new(pb::ListRolesResponse {
            details: list_details(&page),
            result: page.items.into_iter().map(role).collect(),
        }))
    }

    async fn assign_role(
        &self,
        request: Request<pb::AssignRoleRequest>,
    ) -> Answer<pb::AssignRoleResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let id = parse::id(&r.role_id, "roleId")?;
        let max = super::fields::MAX_ASSIGNED_USERS;
        if r.user_ids.is_empty() || r.user_ids.len() > max {
            return Err(Error::invalid("userIds", format!("must hold 1 to {max} user ids")).into());
        }
        let mut user_ids = Vec::with_capacity(r.user_ids.len());
        for (i, user_id) in r.user_ids.iter().enumerate() {
            let user_id = parse::id(user_id, &format!("userIds[{i}]"))?.to_owned();
            if !user_ids.contains(&user_id) {
                user_ids.push(user_id);
            }
        }
        let written = commands::assign_role(&db, id, user_ids).await?;
        Ok(Response::new(pb::AssignRoleResponse {
            details: Some(convert::written(&written)),
        }))
    }

    async fn unassign_role(
        &self,
        request: Request<pb::UnassignRoleRequest>,
    ) -> Answer<pb::UnassignRoleResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.get_ref();
        let written = commands::unassign_role(
            &db,
            parse::id(&r.role_id, "roleId")?,
            parse::id(&r.user_id, "userId")?,
        )
        .await?;
        Ok(Response::new(pb::UnassignRoleResponse {
            details: Some(convert::written(&written)),
        }))
    }

    async fn list_role_users(
        &self,
        request: Request<pb::ListRoleUsersRequest>,
    ) -> Answer<pb::ListUsersResponse> {
        let db = self.state.scoped(&request)?;
        let r = request.into_inner();
        let role_id = parse::id(&r.role_id, "roleId")?.to_owned();
        let token = search::page_token(r.query.as_ref(), &self.state.page_tokens)?;
        let mut search = search::parse_list_users(
            &pb::ListUsersRequest {
                query: r.query,
                sorting_column: r.sorting_column,
                queries: r.queries,
            },
            self.state.pages,
            self.state.limits.query(),
        )?;
        if !reads::role_exists(db.connection(), &role_id)
            .await
            .map_err(Error::from)?
        {
            return Err(role_not_found(&role_id).into());
        }
        let role = Query::Filter(Filter::Role(role_id));
        search.query = Some(match search.query.take() {
            Some(query) => Query::And(vec![role, query]),
            None => role,
        });
        Ok(Response::new(
            pages::users_page(&self.state, &db, search, token).await?,
        ))
    }
}
