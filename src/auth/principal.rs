//! Who is calling: what authentication established, handed to the services in the request's
//! extensions by the auth layer.

use super::permission::{Grant, Permission};
use crate::domain::{Scope, Timestamp};

/// Where the caller's credential came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Credential {
    /// A personal access token (its id); `bootstrap` marks the one minted on first start.
    AccessToken { id: String, bootstrap: bool },
    /// A JWT from the configured OIDC issuer (its `sub`).
    Jwt { subject: String },
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Principal {
    pub credential: Credential,
    pub grant: Grant,
    /// The organization the credential is limited to; None is instance-wide.
    pub organization: Option<String>,
    /// When the credential stops working (a token's expiry, a JWT's `exp`); None: never.
    /// Tokens it mints expire no later.
    pub expires_at: Option<Timestamp>,
}

impl Principal {
    pub fn allows(&self, permission: Permission) -> bool {
        self.grant.allows(permission)
    }

    pub fn scope(&self) -> Scope {
        match &self.organization {
            None => Scope::Instance,
            Some(id) => Scope::Organization(id.clone()),
        }
    }

    /// A stable key for per-caller rate limits and logs (never the secret itself).
    pub fn subject(&self) -> String {
        match &self.credential {
            Credential::AccessToken { id, .. } => format!("token:{id}"),
            Credential::Jwt { subject } => format!("jwt:{subject}"),
        }
    }

    /// The access token behind the call, if it is one: the parent of the tokens it mints.
    pub fn token_id(&self) -> Option<&str> {
        match &self.credential {
            Credential::AccessToken { id, .. } => Some(id),
            Credential::Jwt { .. } => None,
        }
    }

    pub fn is_bootstrap(&self) -> bool {
        matches!(
            self.credential,
            Credential::AccessToken {
                bootstrap: true,
                ..
            }
        )
    }
}
