//! Integration tests: one binary (links polars once) with a module per area.

mod common;
mod foundation;
mod ltv;
mod nightly;
mod scoring;
mod summary_props;
