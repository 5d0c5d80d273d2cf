//! `grpc.health.v1.Health` as one switch: `""` (the whole server) and every directory service
//! are SERVING while the database answers, NOT_SERVING while it does not, and NOT_SERVING for
//! good once the server starts to drain. Every service stands or falls with the one database,
//! so they share one status.

use std::time::Duration;

use tonic::server::NamedService;
use tonic::service::Routes;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

use super::{AccessTokens, Organizations, Roles, UserDirectory, UserSchemas};
use crate::proto::user::v1::organization_service_server::OrganizationServiceServer;
use crate::proto::user::v1::role_service_server::RoleServiceServer;
use crate::proto::user::v1::token_service_server::TokenServiceServer;
use crate::proto::user::v1::user_schema_service_server::UserSchemaServiceServer;
use crate::proto::user::v1::user_service_server::UserServiceServer;
use crate::store::probe::Probe;

/// How often the database is asked: with [`PROBE_TIMEOUT`], health follows a database that
/// went away within 1.25 s and one that came back within about half a second.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(500);
/// Longest a probe waits for the database's answer (a connection included): a database that
/// takes longer to answer `SELECT 1` on a connection of its own is as good as gone.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(750);

/// The names health reports, besides `""`.
const SERVICES: [&str; 5] = [
    <UserServiceServer<UserDirectory> as NamedService>::NAME,
    <OrganizationServiceServer<Organizations> as NamedService>::NAME,
    <UserSchemaServiceServer<UserSchemas> as NamedService>::NAME,
    <RoleServiceServer<Roles> as NamedService>::NAME,
    <TokenServiceServer<AccessTokens> as NamedService>::NAME,
];

/// The switch; clones share it.
#[derive(Clone, Debug)]
pub struct Health {
    reporter: HealthReporter,
}

impl Health {
    /// Adds the health service to `routes`, reporting everything SERVING, and returns its
    /// switch.
    pub async fn serve(routes: Routes, max_message: usize) -> (Self, Routes) {
        let (reporter, service) = tonic_health::server::health_reporter();
        let health = Self { reporter };
        health.set(true).await;
        (
            health,
            routes.add_service(super::compressed!(
                service.max_decoding_message_size(max_message)
            )),
        )
    }

    /// Sets `""` and every service SERVING or NOT_SERVING (watchers see it at once).
    pub async fn set(&self, serving: bool) {
        let status = if serving {
            ServingStatus::Serving
        } else {
            ServingStatus::NotServing
        };
        for name in std::iter::once("").chain(SERVICES) {
            self.reporter.set_service_status(name, status).await;
        }
    }

    /// Follows the database: asks `probe` every [`PROBE_INTERVAL`] and sets health to its
    /// answer, logging each change once. Never returns: the server drops it when it starts to
    /// drain (see `startup`), so nothing sets SERVING after the drain set NOT_SERVING.
    pub async fn follow(&self, probe: &Probe) {
        let mut ticks = tokio::time::interval(PROBE_INTERVAL);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut serving = true;
        loop {
            ticks.tick().await;
            let answer = probe.ask().await;
            match (&answer, serving) {
                (Err(error), true) => tracing::warn!(
                    %error,
                    "the database does not answer: health is NOT_SERVING, requests are Unavailable"
                ),
                (Ok(()), false) => tracing::info!("the database answers again: health is SERVING"),
                _ => {}
            }
            if answer.is_ok() != serving {
                serving = answer.is_ok();
                self.set(serving).await;
            }
        }
    }
}
