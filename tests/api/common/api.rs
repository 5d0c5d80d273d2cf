//! Building a directory through the public API, as a client would.

use serde_json::json;
use userdir::proto::user::v1 as pb;

use super::TestApp;

/// A JSON object as a protobuf Struct.
pub fn object(value: serde_json::Value) -> prost_types::Struct {
    let serde_json::Value::Object(map) = value else {
        panic!("not an object")
    };
    prost_types::Struct {
        fields: map.into_iter().map(|(k, v)| (k, value_of(v))).collect(),
    }
}

fn value_of(value: serde_json::Value) -> prost_types::Value {
    use prost_types::value::Kind;
    use serde_json::Value as J;
    let kind = match value {
        J::Null => Kind::NullValue(0),
        J::Bool(b) => Kind::BoolValue(b),
        J::Number(n) => Kind::NumberValue(n.as_f64().unwrap()),
        J::String(s) => Kind::StringValue(s),
        J::Array(items) => Kind::ListValue(prost_types::ListValue {
            values: items.into_iter().map(value_of).collect(),
        }),
        J::Object(_) => Kind::StructValue(object(value)),
    };
    prost_types::Value { kind: Some(kind) }
}

/// Turns a protobuf Struct back into JSON (whole numbers as integers).
pub fn json_of(value: &prost_types::Struct) -> serde_json::Value {
    fn of(value: &prost_types::Value) -> serde_json::Value {
        use prost_types::value::Kind;
        match &value.kind {
            None | Some(Kind::NullValue(_)) => serde_json::Value::Null,
            Some(Kind::BoolValue(b)) => json!(b),
            Some(Kind::NumberValue(n)) if n.fract() == 0.0 => json!(*n as i64),
            Some(Kind::NumberValue(n)) => json!(n),
            Some(Kind::StringValue(s)) => json!(s),
            Some(Kind::ListValue(l)) => serde_json::Value::Array(l.values.iter().map(of).collect()),
            Some(Kind::StructValue(s)) => json_of(s),
        }
    }
    serde_json::Value::Object(
        value
            .fields
            .iter()
            .map(|(k, v)| (k.clone(), of(v)))
            .collect(),
    )
}

pub async fn organization(app: &TestApp, name: &str) -> String {
    app.organizations
        .clone()
        .create_organization(pb::CreateOrganizationRequest { name: name.into() })
        .await
        .unwrap()
        .into_inner()
        .organization_id
}

/// An instance role without description; its id.
pub async fn role(app: &TestApp, name: &str) -> String {
    app.roles
        .clone()
        .create_role(pb::CreateRoleRequest {
            name: name.into(),
            description: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .role_id
}

/// A schema requiring `givenName` (string) with an optional `age` (integer ≥ 0).
pub async fn person_schema(app: &TestApp, kind: &str) -> String {
    app.schemas
        .clone()
        .create_user_schema(pb::CreateUserSchemaRequest {
            r#type: kind.into(),
            schema: Some(object(json!({
                "type": "object",
                "required": ["givenName"],
                "properties": {
                    "givenName": {"type": "string", "minLength": 1},
                    "age": {"type": "integer", "minimum": 0}
                },
                "additionalProperties": false
            }))),
        })
        .await
        .unwrap()
        .into_inner()
        .schema_id
}

pub fn new_user(org: &str, schema: &str, username: &str) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        organization_id: org.into(),
        schema_id: schema.into(),
        data: Some(object(json!({"givenName": username}))),
        usernames: vec![pb::SetUsername {
            username: username.into(),
            is_organization_specific: false,
        }],
        ..Default::default()
    }
}

pub async fn create_user(app: &TestApp, request: pb::CreateUserRequest) -> String {
    app.users
        .clone()
        .create_user(request)
        .await
        .expect("CreateUser")
        .into_inner()
        .user_id
}

pub async fn get_user(app: &TestApp, id: &str) -> pb::User {
    get_user_with(&app.users, id).await
}

/// The user `id` as the caller of `users` reads it.
pub async fn get_user_with(
    users: &pb::user_service_client::UserServiceClient<super::Authed>,
    id: &str,
) -> pb::User {
    users
        .clone()
        .get_user(pb::GetUserRequest { user_id: id.into() })
        .await
        .expect("GetUser")
        .into_inner()
        .user
        .unwrap()
}

/// The directory's processed sequence right now.
pub async fn processed_sequence(app: &TestApp) -> u64 {
    app.users
        .clone()
        .list_users(pb::ListUsersRequest::default())
        .await
        .unwrap()
        .into_inner()
        .details
        .unwrap()
        .processed_sequence
}

/// The holders of `role` (ListRoleUsers, one page of up to 1000).
pub async fn role_holders(app: &TestApp, role: &str) -> std::collections::BTreeSet<String> {
    app.roles
        .clone()
        .list_role_users(pb::ListRoleUsersRequest {
            role_id: role.to_owned(),
            query: Some(pb::ListQuery {
                limit: 1000,
                ..Default::default()
            }),
            ..Default::default()
        })
        .await
        .expect("ListRoleUsers")
        .into_inner()
        .result
        .into_iter()
        .map(|u| u.user_id)
        .collect()
}
