//! What every gRPC service shares: the database, the limits its requests are held to, the
//! server-wide cap on regex searches and the key of page tokens. Built once at startup and
//! cloned into each service.

use sea_orm::DatabaseConnection;
use tonic::{Request, Status};

use crate::auth::Principal;
use crate::limits::RequestLimits;
use crate::limits::regex_searches::RegexSearches;
use crate::query::{PageLimits, PageTokenKey};
use crate::store::ScopedDb;
use crate::store::writes::Writes;

#[derive(Clone)]
pub struct ServiceState {
    pub db: DatabaseConnection,
    /// Default and largest page of list requests.
    pub pages: PageLimits,
    /// Sizes, depths and text lengths of requests.
    pub limits: RequestLimits,
    /// One cap on regex searches for every surface of the server.
    pub regex_searches: RegexSearches,
    /// Signs and checks the page tokens of user lists; the same key on every server of the
    /// database (`store::keys`).
    pub page_tokens: PageTokenKey,
    /// The server's writes share transactions (group commit): one COMMIT for a burst.
    pub writes: Writes,
}

impl ServiceState {
    /// The directory as the caller may see it. The auth layer puts the caller's principal on
    /// every request it lets through; a request without one never passed the layer, so it is
    /// refused (fail closed) rather than served instance-wide.
    pub(super) fn scoped<T>(&self, request: &Request<T>) -> Result<ScopedDb, Status> {
        let principal = request
            .extensions()
            .get::<Principal>()
            .ok_or_else(|| Status::unauthenticated(crate::auth::UNAUTHENTICATED))?;
        Ok(
            ScopedDb::new(self.db.clone(), principal.scope(), principal.subject())
                .grouped(&self.writes),
        )
    }

    /// Longest name, username, email address or schema type, in characters.
    pub(super) fn max_text(&self) -> usize {
        self.limits.max_text_chars
    }
}
