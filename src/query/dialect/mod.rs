//! One parser per request dialect, each producing the one query tree.

pub mod logto;
pub mod odata;
pub mod zitadel;
