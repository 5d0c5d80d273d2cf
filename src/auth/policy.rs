//! The access policy: which permission each operation needs, and whether an organization-scoped
//! credential may call it at all. The auth layer (`auth::layer`) consults only this module, and
//! a test walks every RPC of the descriptor set against it, so a new RPC without a rule here is
//! refused to everyone but instance admins (and fails that test) instead of shipping open.

use super::permission::Permission::{self, *};
use super::principal::Principal;

/// What an operation requires.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// No credential needed: health, reflection, the OpenAPI document.
    Public,
    /// A credential holding every listed permission. `instance_only` operations change what
    /// all organizations share (organizations, schemas, roles), so organization-scoped
    /// credentials are refused even when they hold the permission.
    Requires {
        permissions: &'static [Permission],
        instance_only: bool,
    },
    /// The admin grant on an instance-wide credential: operations that act with the whole
    /// directory's powers at once (a bulk import chooses user ids and carries password hashes
    /// and authenticators for any organization).
    Admin,
}

/// A credential holding every listed permission, organization-scoped or not.
pub const fn needs(permissions: &'static [Permission]) -> Rule {
    Rule::Requires {
        permissions,
        instance_only: false,
    }
}

const fn instance(permissions: &'static [Permission]) -> Rule {
    Rule::Requires {
        permissions,
        instance_only: true,
    }
}

/// An operation nobody listed: only instance admins get through (to the router's own "unknown
/// method" answer), everyone else is denied.
pub const UNLISTED: Rule = instance(&[]);

/// gRPC services and methods, by the names in the descriptor set.
const GRPC: &[(&str, &[(&str, Rule)])] = &[
    (
        "userdir.user.v1.UserService",
        &[
            ("ListUsers", needs(&[UserRead])),
            ("GetUser", needs(&[UserRead])),
            ("CreateUser", needs(&[UserWrite])),
            ("PatchUser", needs(&[UserWrite])),
            ("DeleteUser", needs(&[UserDelete])),
            ("DeactivateUser", needs(&[UserWrite])),
            ("ReactivateUser", needs(&[UserWrite])),
            ("LockUser", needs(&[UserWrite])),
            ("UnlockUser", needs(&[UserWrite])),
            ("SetContactEmail", needs(&[UserWrite])),
            ("VerifyContactEmail", needs(&[UserWrite])),
            ("SetContactPhone", needs(&[UserWrite])),
            ("VerifyContactPhone", needs(&[UserWrite])),
            ("AddUsername", needs(&[UserWrite])),
            ("RemoveUsername", needs(&[UserWrite])),
            ("SetPassword", needs(&[UserWrite])),
            ("RemovePassword", needs(&[UserWrite])),
            // Checking a password records the sign-in, and is an oracle worth protecting.
            ("VerifyPassword", needs(&[UserWrite])),
            ("StartWebAuthNRegistration", needs(&[UserWrite])),
            ("VerifyWebAuthNRegistration", needs(&[UserWrite])),
            ("RenameWebAuthNAuthenticator", needs(&[UserWrite])),
            ("RemoveWebAuthNAuthenticator", needs(&[UserWrite])),
            ("StartTOTPRegistration", needs(&[UserWrite])),
            ("VerifyTOTPRegistration", needs(&[UserWrite])),
            ("RemoveTOTPAuthenticator", needs(&[UserWrite])),
            ("AddOTPSMSAuthenticator", needs(&[UserWrite])),
            ("VerifyOTPSMSRegistration", needs(&[UserWrite])),
            ("RemoveOTPSMSAuthenticator", needs(&[UserWrite])),
            ("AddOTPEmailAuthenticator", needs(&[UserWrite])),
            ("VerifyOTPEmailRegistration", needs(&[UserWrite])),
            ("RemoveOTPEmailAuthenticator", needs(&[UserWrite])),
            ("AddAuthenticationKey", needs(&[UserWrite])),
            ("RemoveAuthenticationKey", needs(&[UserWrite])),
            ("AddIDPLink", needs(&[UserWrite])),
            ("RemoveIDPLink", needs(&[UserWrite])),
            ("ImportUsers", Rule::Admin),
        ],
    ),
    (
        "userdir.user.v1.OrganizationService",
        &[
            ("CreateOrganization", instance(&[OrgWrite])),
            ("GetOrganization", needs(&[OrgRead])),
            ("ListOrganizations", needs(&[OrgRead])),
        ],
    ),
    (
        "userdir.user.v1.UserSchemaService",
        &[
            ("CreateUserSchema", instance(&[SchemaWrite])),
            ("UpdateUserSchema", instance(&[SchemaWrite])),
            ("GetUserSchema", needs(&[SchemaRead])),
            ("ListUserSchemas", needs(&[SchemaRead])),
        ],
    ),
    (
        "userdir.user.v1.RoleService",
        &[
            ("CreateRole", instance(&[RoleWrite])),
            ("GetRole", needs(&[RoleRead])),
            ("ListRoles", needs(&[RoleRead])),
            // Assignments are checked user by user against the caller's organization.
            ("AssignRole", needs(&[RoleWrite])),
            ("UnassignRole", needs(&[RoleWrite])),
            ("ListRoleUsers", needs(&[RoleRead, UserRead])),
        ],
    ),
    (
        "userdir.user.v1.TokenService",
        &[
            ("CreateAccessToken", needs(&[TokenWrite])),
            ("ListAccessTokens", needs(&[TokenWrite])),
            ("RevokeAccessToken", needs(&[TokenWrite])),
        ],
    ),
];

/// Services anyone may call: probes and API discovery carry no directory data.
const PUBLIC_SERVICES: &[&str] = &[
    "grpc.health.v1.Health",
    "grpc.reflection.v1.ServerReflection",
    "grpc.reflection.v1alpha.ServerReflection",
];

/// The access rule of a hand-written HTTP route (a REST dialect's, beside the transcoder), as
/// method and path pattern; `*` is one path segment.
///
/// Each dialect declares its rules next to its routes (`api::rest`), and startup hands them all
/// to the gate, which passes them here. Listing them in this module instead would make every
/// new dialect touch the policy too, and naming the dialects from here would be an import up
/// into the edge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RestRule {
    pub method: &'static str,
    pub pattern: &'static str,
    pub rule: Rule,
}

const PUBLIC_PATHS: &[&str] = &["/openapi.json"];

/// The rule for a gRPC method named by its HTTP/2 path, `/package.Service/Method`.
pub fn grpc_rule(path: &str) -> Rule {
    let Some((service, method)) = path.strip_prefix('/').and_then(|p| p.split_once('/')) else {
        return UNLISTED;
    };
    if PUBLIC_SERVICES.contains(&service) {
        return Rule::Public;
    }
    GRPC.iter()
        .find(|(name, _)| *name == service)
        .and_then(|(_, methods)| methods.iter().find(|(name, _)| *name == method))
        .map_or(UNLISTED, |(_, rule)| *rule)
}

/// The rule for an HTTP request to the OpenAPI document or to a REST dialect route (one of
/// `rest`); None for other paths (transcoded routes are judged by the rule of the gRPC method
/// they call).
pub fn http_rule(rest: &[RestRule], method: &http::Method, path: &str) -> Option<Rule> {
    if PUBLIC_PATHS.contains(&path) {
        return Some(Rule::Public);
    }
    rest.iter()
        .find(|r| r.method == method.as_str() && matches_pattern(r.pattern, path))
        .map(|r| r.rule)
}

fn matches_pattern(pattern: &str, path: &str) -> bool {
    let mut path = path.split('/');
    for expected in pattern.split('/') {
        match path.next() {
            Some(segment) if expected == "*" && !segment.is_empty() => {}
            Some(segment) if segment == expected => {}
            _ => return false,
        }
    }
    path.next().is_none()
}

/// Why a principal may not run an operation; the message is safe to show the caller.
#[derive(Debug, PartialEq, Eq)]
pub struct Denied(pub String);

/// Decides whether `principal` may run an operation with `rule`.
pub fn authorize(principal: &Principal, rule: Rule, operation: &str) -> Result<(), Denied> {
    let (permissions, instance_only) = match rule {
        Rule::Public => return Ok(()),
        Rule::Admin => {
            if principal.grant != super::Grant::Admin {
                return Err(Denied(format!(
                    "permission denied: {operation} needs the admin permission"
                )));
            }
            (&[][..], true)
        }
        Rule::Requires {
            permissions,
            instance_only,
        } => (permissions, instance_only),
    };
    if rule == UNLISTED
        && (principal.grant != super::Grant::Admin || principal.organization.is_some())
    {
        return Err(Denied(format!(
            "permission denied: {operation} is reserved to instance admins"
        )));
    }
    if let Some(missing) = permissions.iter().find(|p| !principal.allows(**p)) {
        return Err(Denied(format!(
            "permission denied: {operation} needs the permission {missing}"
        )));
    }
    if instance_only && principal.organization.is_some() {
        return Err(Denied(format!(
            "permission denied: {operation} needs an instance-wide credential; this one is \
             limited to an organization"
        )));
    }
    Ok(())
}

/// Every gRPC method the policy names, as `/package.Service/Method` (for the test that compares
/// it with the descriptor set).
pub fn listed_grpc_methods() -> impl Iterator<Item = String> {
    GRPC.iter().flat_map(|(service, methods)| {
        methods
            .iter()
            .map(move |(method, _)| format!("/{service}/{method}"))
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;
    use crate::auth::{Credential, Grant};

    fn principal(grant: Grant, organization: Option<&str>) -> Principal {
        Principal {
            credential: Credential::AccessToken {
                id: "t".into(),
                bootstrap: false,
            },
            grant,
            organization: organization.map(str::to_owned),
            expires_at: None,
        }
    }

    fn holding(names: &str, organization: Option<&str>) -> Principal {
        principal(Grant::from_names(names).unwrap(), organization)
    }

    #[test]
    fn every_rpc_of_the_descriptor_set_has_a_rule_and_no_rule_is_stale() {
        let pool = prost_reflect::DescriptorPool::decode(crate::proto::DESCRIPTOR_SET).unwrap();
        let served: BTreeSet<String> = pool
            .services()
            .flat_map(|s| {
                s.methods()
                    .map(|m| format!("/{}/{}", s.full_name(), m.name()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let listed: BTreeSet<String> = listed_grpc_methods().collect();
        assert_eq!(served, listed);
        for path in &served {
            assert_ne!(grpc_rule(path), UNLISTED, "{path}");
            assert_ne!(grpc_rule(path), Rule::Public, "{path}");
        }
    }

    #[test]
    fn public_and_unlisted_operations() {
        assert_eq!(grpc_rule("/grpc.health.v1.Health/Check"), Rule::Public);
        assert_eq!(
            grpc_rule("/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"),
            Rule::Public
        );
        assert_eq!(grpc_rule("/userdir.user.v1.UserService/Nope"), UNLISTED);
        assert_eq!(grpc_rule("garbage"), UNLISTED);
        let get = http::Method::GET;
        assert_eq!(http_rule(&[], &get, "/openapi.json"), Some(Rule::Public));
        assert_eq!(http_rule(&[], &get, "/v2/users"), None);
    }

    #[test]
    fn rest_patterns_match_one_segment_a_star() {
        let rules = [RestRule {
            method: "GET",
            pattern: "/a/*/b",
            rule: needs(&[UserRead]),
        }];
        let get = http::Method::GET;
        assert_eq!(http_rule(&rules, &get, "/a/x/b"), Some(needs(&[UserRead])));
        assert_eq!(http_rule(&rules, &get, "/a//b"), None);
        assert_eq!(http_rule(&rules, &get, "/a/x/b/c"), None);
        assert_eq!(http_rule(&rules, &http::Method::POST, "/a/x/b"), None);
    }

    #[test]
    fn permissions_scope_and_admin() {
        let read = grpc_rule("/userdir.user.v1.UserService/GetUser");
        let create_org = grpc_rule("/userdir.user.v1.OrganizationService/CreateOrganization");
        assert!(authorize(&holding("user.read", None), read, "GetUser").is_ok());
        assert!(authorize(&holding("user.read", Some("o")), read, "GetUser").is_ok());
        let denied = authorize(&holding("user.write", None), read, "GetUser").unwrap_err();
        assert!(denied.0.contains("user.read"), "{denied:?}");
        assert!(authorize(&holding("org.write", None), create_org, "x").is_ok());
        assert!(authorize(&holding("org.write", Some("o")), create_org, "x").is_err());
        assert!(authorize(&principal(Grant::Admin, Some("o")), create_org, "x").is_err());
        assert!(authorize(&principal(Grant::Admin, None), UNLISTED, "x").is_ok());
        let everything = Permission::ALL.map(|p| p.name()).join(",");
        assert!(authorize(&holding(&everything, None), UNLISTED, "x").is_err());
        let import = grpc_rule("/userdir.user.v1.UserService/ImportUsers");
        assert!(authorize(&principal(Grant::Admin, None), import, "x").is_ok());
        assert!(authorize(&principal(Grant::Admin, Some("o")), import, "x").is_err());
        let denied = authorize(&holding(&everything, None), import, "x").unwrap_err();
        assert!(denied.0.contains("admin"), "{denied:?}");
        let both = grpc_rule("/userdir.user.v1.RoleService/ListRoleUsers");
        assert!(authorize(&holding("role.read", None), both, "x").is_err());
        assert!(authorize(&holding("role.read,user.read", None), both, "x").is_ok());
    }
}
