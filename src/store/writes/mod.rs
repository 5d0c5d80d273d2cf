//! Commands: every write is one transaction that also appends to the event log.

pub mod bulk;
pub mod creates;
pub mod events;
pub mod group;
pub mod guarded;
pub mod import;
pub mod recount;
pub mod unit;
