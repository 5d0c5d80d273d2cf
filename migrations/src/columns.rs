//! Column constructors shared by the migrations, so that every backend stores the same values
//! and compares them the same way.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

/// Builds columns for one backend.
#[derive(Clone, Copy)]
pub struct Columns(pub DatabaseBackend);

impl Columns {
    /// A text column compared and sorted by code point on every backend: SQLite's default
    /// BINARY collation already does that; PostgreSQL needs the "C" collation, otherwise the
    /// database's locale decides the order and LIKE prefix searches cannot use a B-tree index.
    pub fn text(self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        column.text();
        if self.0 == DatabaseBackend::Postgres {
            column.extra("COLLATE \"C\"");
        }
        column
    }

    /// A required text column.
    pub fn text_not_null(self, name: impl IntoIden) -> ColumnDef {
        let mut column = self.text(name);
        column.not_null();
        column
    }

    /// A text primary key.
    pub fn text_pk(self, name: impl IntoIden) -> ColumnDef {
        let mut column = self.text_not_null(name);
        column.primary_key();
        column
    }

    /// A point in time as microseconds since the Unix epoch (UTC). One integer representation
    /// sorts identically on SQLite (which has no timestamp type) and PostgreSQL.
    pub fn timestamp(self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        column.big_integer().not_null();
        column
    }

    pub fn timestamp_null(self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        column.big_integer().null();
        column
    }

    pub fn big_integer(self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        column.big_integer().not_null();
        column
    }

    pub fn integer(self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        column.integer().not_null();
        column
    }

    pub fn boolean(self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        column.boolean().not_null().default(false);
        column
    }

    pub fn json(self, name: impl IntoIden) -> ColumnDef {
        let mut column = ColumnDef::new(name);
        column.json().not_null();
        column
    }
}
