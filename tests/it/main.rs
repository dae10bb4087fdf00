//! The one integration test binary. The same suite runs on SQLite (default) and on
//! PostgreSQL (`TEST_BACKEND=postgres`, `TEST_PG_URL`).
mod harness;

mod access;
mod activation;
mod admin;
mod admin_browser;
mod admin_settings;
mod audit;
mod bridge;
mod catalog;
mod checkin;
mod cli;
mod client;
mod cloud;
mod cloud_more;
mod connector_appends;
mod connectors;
mod crash;
mod erp_ops;
mod honeypot;
mod lifecycle;
mod mail;
mod manipulation;
mod online;
mod orders;
mod portal;
mod production;
mod protocol;
mod register;
mod resilience;
mod rules;
mod saml;
mod soap;
mod soap_clients;
mod soap_golden;
mod webhooks;
