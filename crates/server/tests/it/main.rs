//! The server crate's integration tests, one binary: each module is one
//! area (linking every area into one binary is much faster to build).

mod common;

mod access;
mod append;
mod bad_input;
mod concat;
mod downloads;
mod flow;
mod form_batches;
mod page;
mod replay;
mod slow_clients;
mod sweep;
mod tus;
mod tus_extensions;
