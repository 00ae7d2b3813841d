//! tusk-catalog: `Catalog` backends.
//!
//! - [`sqlite`]: one SQLite file, the default; migrations in
//!   `migrations/sqlite/`, applied when the catalog opens.

pub mod sqlite;

pub use sqlite::SqliteCatalog;
