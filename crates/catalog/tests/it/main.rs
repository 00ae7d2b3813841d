//! The catalog crate's integration tests, one binary: each module is one
//! area (linking every area into one binary is much faster to build).

mod conformance;
mod postgres;
