//! The part of the directory a caller may see and change.

/// Instance-wide, or one organization's users (and the tokens minted for it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Instance,
    Organization(String),
}

impl Scope {
    /// Whether a resource owned by `organization_id` is inside the scope.
    pub fn admits(&self, organization_id: &str) -> bool {
        match self {
            Scope::Instance => true,
            Scope::Organization(own) => own == organization_id,
        }
    }

    /// The organization the scope is narrowed to, if any.
    pub fn organization(&self) -> Option<&str> {
        match self {
            Scope::Instance => None,
            Scope::Organization(own) => Some(own),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_organization_scope_admits_only_its_organization() {
        let scope = Scope::Organization("o1".into());
        assert!(scope.admits("o1"));
        assert!(!scope.admits("o2"));
        assert!(!scope.admits(""));
        assert!(Scope::Instance.admits("o2"));
    }
}
