//! tusk-catalog: `Catalog` backends.
//!
//! - [`sqlite`]: one SQLite file, the default, for one server process;
//!   migrations in `migrations/sqlite/`, applied when the catalog opens.
//! - [`postgres`]: one PostgreSQL database shared by several nodes, with
//!   row locks for what must be atomic and advisory locks for exclusivity;
//!   migrations in `migrations/postgres/`, applied when the catalog
//!   connects.
//!
//! Both pass the conformance suite of `tusk_core::conformance::catalog`.

pub mod postgres;
pub mod sqlite;

pub use postgres::PostgresCatalog;
pub use sqlite::SqliteCatalog;
