//! Operations: what an operator runs (backups, restores and drills, the audit-chain check,
//! retention, tenant export and purge with erasure certificates) and the daily jobs `serve`
//! runs by itself. The CLI's clap types for these commands live in [`cli`].

pub mod audit;
pub mod backup;
pub mod certificate;
pub mod cli;
pub mod code_jobs;
pub mod jobs;
pub mod keys;
pub mod mail;
pub mod notices;
pub mod operators;
pub mod pg_tools;
pub mod progress;
pub mod report;
pub mod retention;
pub mod tenant;
pub mod webhooks;
