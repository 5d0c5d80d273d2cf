//! Organizations and roles through the API, on SQLite and PostgreSQL.

use crate::common;

use common::TestApp;
use common::api;
use common::queries::{self as q, M};
use tonic::Code;
use userdir::proto::user::v1::{self as pb, FieldName};

backend_tests!(
    organizations_are_created_read_and_listed,
    roles_are_assigned_and_list_their_users
);

async fn organizations_are_created_read_and_listed(app: TestApp) {
    let mut orgs = app.organizations.clone();
    let acme = api::organization(&app, "Acme").await;
    let _globex = api::organization(&app, "Globex").await;
    let zoe = api::organization(&app, "Zoë & Søn").await;
    let got = orgs
        .get_organization(pb::GetOrganizationRequest {
            organization_id: acme.clone(),
        })
        .await
        .unwrap()
        .into_inner()
        .organization
        .unwrap();
    assert_eq!(got.name, "Acme");
    assert_eq!(got.details.unwrap().resource_owner, acme);
    let missing = orgs
        .get_organization(pb::GetOrganizationRequest {
            organization_id: "nope".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Code::NotFound);

    let all = orgs
        .list_organizations(pb::ListOrganizationsRequest::default())
        .await
        .unwrap()
        .into_inner();
    let names: Vec<String> = all.result.iter().map(|o| o.name.clone()).collect();
    assert_eq!(names, ["Zoë & Søn", "Globex", "Acme"], "newest first");
    assert_eq!(all.details.unwrap().total_result, 3);
    let filtered = orgs
        .list_organizations(pb::ListOrganizationsRequest {
            query: Some(pb::ListQuery {
                offset: 0,
                limit: 10,
                asc: true,
                ..Default::default()
            }),
            name_query: Some(pb::OrganizationNameQuery {
                name: "ZOË".into(),
                method: M::StartsWithIgnoreCase.into(),
            }),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(filtered.result.len(), 1);
    assert_eq!(filtered.result[0].organization_id, zoe);
    let blank = orgs
        .create_organization(pb::CreateOrganizationRequest { name: "  ".into() })
        .await
        .unwrap_err();
    assert_eq!(
        (blank.code(), blank.message()),
        (Code::InvalidArgument, "name: must not be blank")
    );
}

async fn roles_are_assigned_and_list_their_users(app: TestApp) {
    let org = api::organization(&app, "Acme").await;
    let schema = api::person_schema(&app, "person").await;
    let mut ids = Vec::new();
    for name in ["ann", "bob", "cid", "dee"] {
        let mut request = api::new_user(&org, &schema, name);
        request.contact = Some(pb::SetContact {
            email: Some(pb::SetEmail {
                address: format!("{name}@example.com"),
                verification: Some(pb::set_email::Verification::IsVerified(true)),
            }),
            phone: None,
        });
        ids.push(api::create_user(&app, request).await);
    }
    let mut roles = app.roles.clone();
    let admin = roles
        .create_role(pb::CreateRoleRequest {
            name: "Admin".into(),
            description: "Everything".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .role_id;
    let duplicate = roles
        .create_role(pb::CreateRoleRequest {
            name: "ADMIN".into(),
            description: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(duplicate.code(), Code::AlreadyExists);

    let unknown = roles
        .assign_role(pb::AssignRoleRequest {
            role_id: admin.clone(),
            user_ids: vec![ids[0].clone(), "nobody".into()],
        })
        .await
        .unwrap_err();
    assert_eq!(unknown.code(), Code::NotFound);
    roles
        .assign_role(pb::AssignRoleRequest {
            role_id: admin.clone(),
            user_ids: vec![ids[0].clone(), ids[1].clone(), ids[3].clone()],
        })
        .await
        .unwrap();
    // Assigning again is harmless.
    roles
        .assign_role(pb::AssignRoleRequest {
            role_id: admin.clone(),
            user_ids: vec![ids[1].clone()],
        })
        .await
        .unwrap();

    let list = |queries, offset, limit| pb::ListRoleUsersRequest {
        role_id: admin.clone(),
        query: Some(pb::ListQuery {
            offset,
            limit,
            asc: true,
            ..Default::default()
        }),
        sorting_column: FieldName::Email.into(),
        queries,
    };
    let page = roles
        .list_role_users(list(vec![], 0, 2))
        .await
        .unwrap()
        .into_inner();
    let emails: Vec<String> = page
        .result
        .iter()
        .map(|u| {
            u.contact
                .as_ref()
                .unwrap()
                .email
                .as_ref()
                .unwrap()
                .address
                .clone()
        })
        .collect();
    assert_eq!(emails, ["ann@example.com", "bob@example.com"]);
    assert_eq!(page.details.unwrap().total_result, 3);
    assert_eq!(page.sorting_column, FieldName::Email as i32);
    let filtered = roles
        .list_role_users(list(vec![q::not(q::email("b", M::StartsWith))], 0, 10))
        .await
        .unwrap()
        .into_inner();
    let found: Vec<String> = filtered.result.into_iter().map(|u| u.user_id).collect();
    assert_eq!(found, [ids[0].clone(), ids[3].clone()]);

    roles
        .unassign_role(pb::UnassignRoleRequest {
            role_id: admin.clone(),
            user_id: ids[0].clone(),
        })
        .await
        .unwrap();
    let again = roles
        .unassign_role(pb::UnassignRoleRequest {
            role_id: admin.clone(),
            user_id: ids[0].clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(again.code(), Code::NotFound);
    // Deleting a user removes its assignments.
    app.users
        .clone()
        .delete_user(pb::DeleteUserRequest {
            user_id: ids[3].clone(),
        })
        .await
        .unwrap();
    let left = roles
        .list_role_users(list(vec![], 0, 10))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(left.result.len(), 1);
    assert_eq!(left.result[0].user_id, ids[1]);

    let missing = roles
        .list_role_users(pb::ListRoleUsersRequest {
            role_id: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(
        (missing.code(), missing.message()),
        (Code::NotFound, "roleId: no role with id \"nope\"")
    );
    let invalid = roles
        .list_role_users(pb::ListRoleUsersRequest {
            role_id: admin.clone(),
            queries: vec![q::or(vec![])],
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(invalid.code(), Code::InvalidArgument);
    let listed = roles
        .list_roles(pb::ListRolesRequest::default())
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.result.len(), 1);
    assert_eq!(
        roles
            .get_role(pb::GetRoleRequest { role_id: admin })
            .await
            .unwrap()
            .into_inner()
            .role
            .unwrap()
            .description,
        "Everything"
    );
}
