//! Permissions in ZITADEL's `resource.action` style.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Permission {
    UserRead,
    UserWrite,
    UserDelete,
    RoleRead,
    RoleWrite,
    OrgRead,
    OrgWrite,
    SchemaRead,
    SchemaWrite,
    TokenWrite,
}

impl Permission {
    pub const ALL: [Permission; 10] = [
        Permission::UserRead,
        Permission::UserWrite,
        Permission::UserDelete,
        Permission::RoleRead,
        Permission::RoleWrite,
        Permission::OrgRead,
        Permission::OrgWrite,
        Permission::SchemaRead,
        Permission::SchemaWrite,
        Permission::TokenWrite,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Permission::UserRead => "user.read",
            Permission::UserWrite => "user.write",
            Permission::UserDelete => "user.delete",
            Permission::RoleRead => "role.read",
            Permission::RoleWrite => "role.write",
            Permission::OrgRead => "org.read",
            Permission::OrgWrite => "org.write",
            Permission::SchemaRead => "schema.read",
            Permission::SchemaWrite => "schema.write",
            Permission::TokenWrite => "token.write",
        }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
#[error(
    "unknown permission {0:?}; known: user.read, user.write, user.delete, role.read, role.write, org.read, org.write, schema.read, schema.write, token.write"
)]
pub struct UnknownPermission(pub String);

impl FromStr for Permission {
    type Err = UnknownPermission;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Permission::ALL
            .into_iter()
            .find(|p| p.name() == name)
            .ok_or_else(|| UnknownPermission(name.to_owned()))
    }
}

/// What a credential grants: every permission (`admin`) or a set of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    Admin,
    Permissions(BTreeSet<Permission>),
}

impl Grant {
    pub fn allows(&self, permission: Permission) -> bool {
        match self {
            Grant::Admin => true,
            Grant::Permissions(set) => set.contains(&permission),
        }
    }

    /// Whether everything `other` grants, this grants too (no one mints more than they hold).
    pub fn covers(&self, other: &Grant) -> bool {
        match (self, other) {
            (Grant::Admin, _) => true,
            (Grant::Permissions(_), Grant::Admin) => false,
            (Grant::Permissions(mine), Grant::Permissions(theirs)) => theirs.is_subset(mine),
        }
    }

    /// As stored and shown: `admin`, or the permission names joined by commas.
    pub fn to_names(&self) -> String {
        match self {
            Grant::Admin => "admin".into(),
            Grant::Permissions(set) => set.iter().map(|p| p.name()).collect::<Vec<_>>().join(","),
        }
    }

    /// Parses `admin` or a comma-separated list of permission names (at least one).
    pub fn from_names(names: &str) -> Result<Self, UnknownPermission> {
        if names.trim() == "admin" {
            return Ok(Grant::Admin);
        }
        let set = names
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(Permission::from_str)
            .collect::<Result<BTreeSet<_>, _>>()?;
        if set.is_empty() {
            return Err(UnknownPermission(names.to_owned()));
        }
        Ok(Grant::Permissions(set))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for permission in Permission::ALL {
            assert_eq!(permission.name().parse::<Permission>().unwrap(), permission);
        }
        assert!("user.admin".parse::<Permission>().is_err());
        let grant = Grant::from_names("user.read, role.read").unwrap();
        assert_eq!(grant.to_names(), "user.read,role.read");
        assert_eq!(Grant::from_names("admin").unwrap(), Grant::Admin);
        assert!(Grant::from_names("").is_err());
        assert!(Grant::from_names("user.read,admin").is_err());
    }

    #[test]
    fn a_grant_covers_only_its_subsets() {
        let read = Grant::from_names("user.read").unwrap();
        let both = Grant::from_names("user.read,user.write").unwrap();
        assert!(both.covers(&read));
        assert!(!read.covers(&both));
        assert!(!both.covers(&Grant::Admin));
        assert!(Grant::Admin.covers(&both));
        assert!(!read.allows(Permission::UserWrite));
        assert!(Grant::Admin.allows(Permission::TokenWrite));
    }
}
