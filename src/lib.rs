//! Licentia: an open-source license central.
pub mod api;
pub mod app;
pub mod bench;
pub mod client;
pub mod config;
pub mod connectors;
pub mod domain;
pub mod error;
pub mod protocol;
pub mod service;
pub mod store;
