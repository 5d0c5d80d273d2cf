//! One parser per request dialect, each producing a [`crate::query::UserSearch`].

pub mod zitadel;
