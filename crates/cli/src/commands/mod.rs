//! One file per command: its flags (with an example in `--help`) and its `run`.

pub mod cleanup;
pub mod export;
pub mod follow;
pub mod hold;
pub mod import;
pub mod integrity;
pub mod log;
pub mod proxy;
pub mod proxy_audit;
pub mod proxy_http;
pub mod query;
pub mod recover;
pub mod redact;
pub mod report;
pub mod schema;
pub mod serve;
pub mod show;
pub mod sink;
pub mod stats;
pub mod subject;
pub mod subject_erase;
pub mod summary;
pub mod token;
pub mod witness;
