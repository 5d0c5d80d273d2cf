//! Database migrations of the userdir directory, for SQLite and PostgreSQL.

pub use sea_orm_migration::prelude::*;

mod columns;
mod m20261123_000001_directory;
mod m20261123_000002_writes;
mod m20261123_000003_rest_dialects;
mod m20261123_000004_access_tokens;
mod m20261201_000005_token_lineage;
mod m20261201_000006_tenant_uniqueness;
mod m20261202_000007_list_indexes;
mod m20261202_000008_user_counts;
mod m20261202_000009_server_keys;
mod m20261202_000010_sqlite_trigram;
mod m20261202_000011_role_holder_order;
mod m20261203_000012_suffix_indexes;
mod m20261207_000013_authenticator_documents;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_directory::Migration),
            Box::new(m20261123_000002_writes::Migration),
            Box::new(m20261123_000003_rest_dialects::Migration),
            Box::new(m20261123_000004_access_tokens::Migration),
            Box::new(m20261201_000005_token_lineage::Migration),
            Box::new(m20261201_000006_tenant_uniqueness::Migration),
            Box::new(m20261202_000007_list_indexes::Migration),
            Box::new(m20261202_000008_user_counts::Migration),
            Box::new(m20261202_000009_server_keys::Migration),
            Box::new(m20261202_000010_sqlite_trigram::Migration),
            Box::new(m20261202_000011_role_holder_order::Migration),
            Box::new(m20261203_000012_suffix_indexes::Migration),
            Box::new(m20261207_000013_authenticator_documents::Migration),
        ]
    }
}
