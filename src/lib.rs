//! # custvalue
//!
//! Customer-value analytics over transaction histories: load and validate transaction
//! lines (CSV, Parquet, Arrow IPC), summarise them per customer, and score, segment and
//! value the customers. The exact definitions are those of the project's JOB.md,
//! summarised in the README.
//!
//! The pipeline runs one way: [`load`] → [`summarize`] → analyses → [`output`].
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("tx.csv");
//! std::fs::write(&path, "customer_id,ts,amount\nA,2024-01-01,10\nB,2024-01-05,20\n").unwrap();
//! let loaded = custvalue::load(&custvalue::LoadOptions::new([path.to_str().unwrap()])).unwrap();
//! let summary = custvalue::summarize(&loaded.transactions).unwrap();
//! let frame = summary.to_frame().unwrap(); // a polars DataFrame, one row per customer
//! assert_eq!(frame.height(), 2);
//! ```

pub mod affinity;
pub mod best;
pub mod cohorts;
pub mod config;
pub mod cube;
pub mod deciles;
#[cfg(feature = "distributed")]
pub mod distributed;
pub mod engine;
pub mod error;
pub mod lifecycle;
pub mod load;
pub mod ltv;
pub mod migration;
pub mod model_summary;
pub mod models;
pub mod money;
pub mod output;
pub mod parallel;
pub mod profit;
pub mod report;
pub mod rfm;
pub mod run;
pub mod segments;
pub mod state;
pub mod stream;
pub mod summary;
pub mod synth;
pub mod time;
pub mod transactions;

pub use error::{Error, Result};
pub use load::{BadRowPolicy, ColumnNames, IdType, LoadOptions};
pub use load::{LoadReport, Loaded, load, load_frame};
pub use polars;
pub use segments::{AnalysisSettings, Segmentation, segment};
pub use summary::{Summary, summarize};
pub use transactions::{CustomerIds, TextIds, Transactions};

/// Test data: the next number of a xorshift sequence, the same on every machine.
#[cfg(test)]
pub(crate) fn xorshift(x: &mut u64) -> u64 {
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    *x
}
