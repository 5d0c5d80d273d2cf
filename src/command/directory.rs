//! Organizations, user schemas, roles and role assignments.

use std::collections::BTreeMap;

use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use super::{new_id, user_not_found};
use crate::domain::{fold_case, schema};
use crate::error::{Error, Result, unique};
use crate::store::ScopedDb;
use crate::store::entities::{
    organization, role, role_assignment, user, user_schema, user_schema_revision,
};
use crate::store::writes::unit::{UnitOfWork, Written};

pub async fn create_organization(db: &ScopedDb, name: String) -> Result<(String, Written)> {
    let mut uow = UnitOfWork::begin(db).await?;
    let id = new_id();
    let written = uow.record(
        "organization",
        &id,
        &id,
        "organization.added",
        json!({"name": name}),
    );
    organization::Entity::insert(organization::ActiveModel {
        id: Set(id.clone()),
        name_lower: Set(fold_case(&name)),
        name: Set(name),
        created_at: Set(written.at.micros()),
        changed_at: Set(written.at.micros()),
        sequence: Set(written.sequence),
    })
    .exec_without_returning(uow.txn())
    .await?;
    uow.commit().await?;
    Ok((id, written))
}

pub async fn create_schema(
    db: &ScopedDb,
    schema_type: String,
    json_schema: Value,
) -> Result<(String, Written)> {
    schema::check_schema(&json_schema).map_err(|reason| Error::invalid("schema", reason))?;
    let mut uow = UnitOfWork::begin(db).await?;
    let id = new_id();
    let written = uow.record(
        "user_schema",
        &id,
        "",
        "user_schema.created",
        json!({"type": schema_type, "revision": 1}),
    );
    let now = written.at.micros();
    let taken = || {
        Error::AlreadyExists(format!(
            "type: a user schema of type {schema_type:?} exists"
        ))
    };
    user_schema::Entity::insert(user_schema::ActiveModel {
        id: Set(id.clone()),
        r#type: Set(schema_type.clone()),
        type_lower: Set(fold_case(&schema_type)),
        revision: Set(1),
        json_schema: Set(json_schema.clone()),
        created_at: Set(now),
        changed_at: Set(now),
        sequence: Set(written.sequence),
    })
    .exec_without_returning(uow.txn())
    .await
    .map_err(|error| unique(error, taken))?;
    insert_revision(&uow, &id, 1, &schema_type, json_schema, now).await?;
    uow.commit().await?;
    Ok((id, written))
}

async fn insert_revision(
    uow: &UnitOfWork,
    id: &str,
    revision: i32,
    schema_type: &str,
    json_schema: Value,
    now: i64,
) -> Result<()> {
    user_schema_revision::Entity::insert(user_schema_revision::ActiveModel {
        schema_id: Set(id.to_owned()),
        revision: Set(revision),
        r#type: Set(schema_type.to_owned()),
        json_schema: Set(json_schema),
        created_at: Set(now),
    })
    .exec_without_returning(uow.txn())
    .await?;
    Ok(())
}

/// A new revision. A new type is copied to the schema's users in the same transaction (they
/// carry it for sorting and search).
pub async fn update_schema(
    db: &ScopedDb,
    id: &str,
    new_type: Option<String>,
    new_schema: Option<Value>,
) -> Result<(i32, Written)> {
    if let Some(json_schema) = &new_schema {
        schema::check_schema(json_schema).map_err(|reason| Error::invalid("schema", reason))?;
    }
    let mut uow = UnitOfWork::begin(db).await?;
    let current = user_schema::Entity::find_by_id(id)
        .one(uow.txn())
        .await?
        .ok_or_else(|| Error::NotFound(format!("schemaId: no user schema with id {id:?}")))?;
    let revision = current.revision + 1;
    let schema_type = new_type.unwrap_or_else(|| current.r#type.clone());
    let json_schema = new_schema.unwrap_or_else(|| current.json_schema.clone());
    let written = uow.record(
        "user_schema",
        id,
        "",
        "user_schema.updated",
        json!({"type": schema_type, "revision": revision}),
    );
    let now = written.at.micros();
    let taken = || {
        Error::AlreadyExists(format!(
            "type: a user schema of type {schema_type:?} exists"
        ))
    };
    user_schema::Entity::update(user_schema::ActiveModel {
        id: Set(id.to_owned()),
        r#type: Set(schema_type.clone()),
        type_lower: Set(fold_case(&schema_type)),
        revision: Set(revision),
        json_schema: Set(json_schema.clone()),
        changed_at: Set(now),
        sequence: Set(written.sequence),
        ..Default::default()
    })
    .exec(uow.txn())
    .await
    .map_err(|error| unique(error, taken))?;
    insert_revision(&uow, id, revision, &schema_type, json_schema, now).await?;
    if schema_type != current.r#type {
        user::Entity::update_many()
            .col_expr(user::Column::SchemaType, Expr::value(schema_type.clone()))
            .col_expr(
                user::Column::SchemaTypeLower,
                Expr::value(fold_case(&schema_type)),
            )
            .filter(user::Column::SchemaId.eq(id))
            .exec(uow.txn())
            .await?;
    }
    uow.commit().await?;
    Ok((revision, written))
}

pub async fn create_role(
    db: &ScopedDb,
    name: String,
    description: String,
) -> Result<(String, Written)> {
    let mut uow = UnitOfWork::begin(db).await?;
    let id = new_id();
    let written = uow.record("role", &id, "", "role.created", json!({"name": name}));
    let taken = || Error::AlreadyExists(format!("name: a role named {name:?} exists"));
    role::Entity::insert(role::ActiveModel {
        id: Set(id.clone()),
        name: Set(name.clone()),
        name_lower: Set(fold_case(&name)),
        description: Set(description),
        created_at: Set(written.at.micros()),
        changed_at: Set(written.at.micros()),
        sequence: Set(written.sequence),
    })
    .exec_without_returning(uow.txn())
    .await
    .map_err(|error| unique(error, taken))?;
    uow.commit().await?;
    Ok((id, written))
}

async fn role_for_write(uow: &UnitOfWork, role_id: &str) -> Result<role::Model> {
    role::Entity::find_by_id(role_id)
        .one(uow.txn())
        .await?
        .ok_or_else(|| Error::NotFound(format!("roleId: no role with id {role_id:?}")))
}

/// Assigns a role to users; users who have it already are left as they are. Every user must
/// exist, or nothing is assigned.
///
/// Roles are shared by every organization, so an assignment is an event of the assigned users'
/// organization (one event per organization when an instance-wide caller assigns users of
/// several) and leaves the role's own details alone: another tenant's assignment must never
/// show in what a tenant sees of the role.
pub async fn assign_role(db: &ScopedDb, role_id: &str, user_ids: Vec<String>) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let role = role_for_write(&uow, role_id).await?;
    // Users outside the caller's scope count as missing.
    let existing: BTreeMap<String, user::Model> = user::Entity::find()
        .filter(user::Column::Id.is_in(user_ids.iter().map(String::as_str)))
        .all(uow.txn())
        .await?
        .into_iter()
        .filter(|u| uow.scope().admits(&u.organization_id))
        .map(|u| (u.id.clone(), u))
        .collect();
    if let Some(missing) = user_ids.iter().find(|id| !existing.contains_key(*id)) {
        return Err(user_not_found(missing));
    }
    let assigned: Vec<String> = role_assignment::Entity::find()
        .filter(role_assignment::Column::RoleId.eq(role.id.as_str()))
        .filter(role_assignment::Column::UserId.is_in(user_ids.iter().map(String::as_str)))
        .all(uow.txn())
        .await?
        .into_iter()
        .map(|a| a.user_id)
        .collect();
    let mut by_organization: BTreeMap<&str, Vec<&String>> = BTreeMap::new();
    let mut new: Vec<&String> = Vec::new();
    for id in &user_ids {
        if !assigned.contains(id) && !new.contains(&id) {
            new.push(id);
            by_organization
                .entry(existing[id].organization_id.as_str())
                .or_default()
                .push(id);
        }
    }
    let written = if by_organization.is_empty() {
        uow.record(
            "role",
            &role.id,
            "",
            "role.assigned",
            json!({"userIds": new}),
        )
    } else {
        let mut last = None;
        for (organization, ids) in &by_organization {
            last = Some(uow.record_in(
                Some((*organization).to_owned()),
                "role",
                &role.id,
                "",
                "role.assigned",
                json!({"userIds": ids}),
            ));
        }
        last.expect("at least one organization")
    };
    if !new.is_empty() {
        role_assignment::Entity::insert_many(new.iter().map(|user_id| {
            role_assignment::ActiveModel {
                role_id: Set(role.id.clone()),
                user_id: Set((*user_id).clone()),
                created_at: Set(written.at.micros()),
                user_created_at: Set(existing[*user_id].created_at),
            }
        }))
        .exec_without_returning(uow.txn())
        .await?;
    }
    uow.commit().await?;
    Ok(written)
}

pub async fn unassign_role(db: &ScopedDb, role_id: &str, user_id: &str) -> Result<Written> {
    let mut uow = UnitOfWork::begin(db).await?;
    let role = role_for_write(&uow, role_id).await?;
    let not_assigned = || {
        Error::NotFound(format!(
            "userId: the role is not assigned to user {user_id:?}"
        ))
    };
    // A user of another organization reads exactly like one without the role.
    let user = user::Entity::find_by_id(user_id).one(uow.txn()).await?;
    if let Some(user) = &user
        && !uow.scope().admits(&user.organization_id)
    {
        return Err(not_assigned());
    }
    let removed = role_assignment::Entity::delete_by_id((role.id.clone(), user_id.to_owned()))
        .exec(uow.txn())
        .await?;
    if removed.rows_affected == 0 {
        return Err(not_assigned());
    }
    // Like an assignment: an event of the user's organization; the shared role is unchanged.
    let written = uow.record_in(
        user.map(|u| u.organization_id),
        "role",
        &role.id,
        "",
        "role.unassigned",
        json!({"userId": user_id}),
    );
    uow.commit().await?;
    Ok(written)
}
