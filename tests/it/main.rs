//! Integration tests: one binary (links polars once) with a module per area.

mod bad_inputs;
mod columnar;
mod common;
mod foundation;
mod incremental;
mod ltv;
mod nightly;
mod progress;
mod reliability;
mod report;
mod scoring;
mod summary_props;
mod three_d;
