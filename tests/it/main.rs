//! Integration tests: one binary (links polars once) with a module per area.

mod architecture;
mod bad_inputs;
#[cfg(feature = "distributed")]
mod cluster;
mod columnar;
mod common;
#[cfg(feature = "distributed")]
mod distributed;
mod foundation;
mod incremental;
mod ltv;
mod ltv_summary;
mod nightly;
mod oracle;
mod progress;
mod reliability;
mod report;
mod scoring;
mod stream;
mod summary_props;
mod three_d;
mod warehouse;
