//! userdir: a user directory in the style of ZITADEL's user API.

pub mod api;
pub mod auth;
pub mod command;
pub mod config;
pub mod domain;
pub mod error;
// Test harness, not part of the service: only the fuzz crate and the tests enable it.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing;
pub mod import;
pub mod limits;
pub mod memory;
pub mod query;
pub mod refusal;
pub mod seed;
pub mod startup;
pub mod store;
pub mod telemetry;

/// Code generated from `proto/` and the encoded descriptor set it came from.
pub mod proto {
    pub mod user {
        pub mod v1 {
            tonic::include_proto!("userdir.user.v1");
        }
    }

    /// Every file of our API and its imports, for reflection and the JSON transcoder.
    pub const DESCRIPTOR_SET: &[u8] =
        include_bytes!(concat!(env!("OUT_DIR"), "/userdir_descriptor.bin"));
}
