//! The integration tests, one binary: every file a module, sharing `common` (the harness that
//! runs each storage test on SQLite and PostgreSQL through a real server). One binary links the
//! dependencies once instead of once per file.
//!
//! `tests/hostile_json_memory.rs` stays a binary of its own: it counts the peak memory of its
//! whole process, so nothing else may run beside it.
//!
//! Run one file's tests with `cargo test --test api list_users::`.

#[macro_use]
mod common;

mod access_control;
mod authenticator_documents;
mod backends_agree;
mod backup;
mod batched_creates;
mod cli_and_logs;
mod compression;
mod connect;
mod cors;
mod counters;
mod database_sockets;
mod drain;
mod fuzz_regressions;
mod get_user;
mod group_commit;
mod hostile_connections;
mod hostile_input;
mod hostile_json;
mod hostile_limits;
mod hostile_metering;
mod hostile_passwords;
mod hostile_regex;
mod hostile_rest;
mod http_grpc_web;
mod http_json;
mod http_openapi;
mod import;
mod indexes;
mod list_users;
mod migration_backfill;
mod observability;
mod oidc;
mod outages;
mod page_tokens;
mod rest_greenlake;
mod rest_logto;
mod role_holders;
mod round_trips;
mod sqlite_wal;
mod substring_search;
mod tenancy;
mod token_lifecycle;
mod write_authenticators;
mod write_contention;
mod write_roles;
mod write_users;
