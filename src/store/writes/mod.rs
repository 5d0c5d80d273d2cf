//! Commands: every write is one transaction that also appends to the event log.

pub mod bulk;
pub mod creates;
pub mod events;
pub mod exclusive;
pub mod group;
pub mod guarded;
pub mod import;
pub mod recount;
pub mod unit;

/// A server's writes, shared by every request (cheap to clone): concurrent writes share
/// transactions (`group`), and concurrent CreateUsers share their statements too (`creates`).
#[derive(Clone, Debug, Default)]
pub struct Writes {
    pub group: group::GroupCommit,
    pub creates: creates::CreateLane,
}
