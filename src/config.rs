//! Options: how to read the input (column mapping, CSV dialect, time format, money) and
//! the TOML config file that carries the same keys for repeatable runs.
//!
//! Precedence: command-line flags over the config file over the defaults. Unknown keys
//! in the config file are errors that name the key, so a typo never goes unnoticed.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
pub use crate::load::options::{
    BadRowPolicy, ColumnNames, IdType, LoadObserver, LoadOptions, LoadProgress, Role,
    check_decimals, parse_as_of, parse_margin, single_byte,
};
use crate::time::TimeFormat;

/// The `[input]` table of a config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputConfig {
    pub files: Option<Vec<String>>,
    pub delimiter: Option<String>,
    pub header: Option<bool>,
    pub quote: Option<String>,
    pub time_format: Option<String>,
    pub customer_id_type: Option<IdType>,
    pub currency_decimals: Option<u32>,
    pub as_of: Option<String>,
    pub margin: Option<toml::Value>,
    pub on_bad_rows: Option<String>,
}

/// A whole config file. Sections for the analyses live in their own modules and are
/// added here as they appear.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    #[serde(default)]
    pub input: InputConfig,
    #[serde(default)]
    pub columns: ColumnNames,
    #[serde(default)]
    pub rfm: crate::segments::RfmSettings,
    #[serde(default)]
    pub deciles: crate::segments::DecileSettings,
    #[serde(default)]
    pub best: crate::best::BestRule,
    #[serde(default)]
    pub lifecycle: crate::lifecycle::LifecycleRules,
    #[serde(default)]
    pub run: RunSettings,
}

impl ConfigFile {
    /// The analysis sections.
    pub fn analysis(&self) -> crate::segments::AnalysisSettings {
        crate::segments::AnalysisSettings {
            rfm: self.rfm.clone(),
            deciles: self.deciles.clone(),
            best: self.best.clone(),
            lifecycle: self.lifecycle,
        }
    }

    /// Reads and checks a TOML config file; errors name the file and the offending key.
    pub fn read(path: &Path) -> Result<ConfigFile> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        toml::from_str(&text).map_err(|e| {
            Error::Usage(format!(
                "{}: {}",
                path.display(),
                e.to_string().trim_end().replace('\n', "\n  ")
            ))
        })
    }
}

impl InputConfig {
    /// Applies this table's settings onto `opts`.
    pub fn apply(&self, opts: &mut LoadOptions) -> Result<()> {
        if let Some(files) = &self.files {
            opts.inputs = files.clone();
        }
        let key = |k: &'static str| move |e: Error| Error::Usage(format!("{k}: {e}"));
        if let Some(d) = &self.delimiter {
            opts.delimiter = single_byte("delimiter", d)?;
        }
        if let Some(h) = self.header {
            opts.has_header = h;
        }
        if let Some(q) = &self.quote {
            opts.quote = single_byte("quote", q)?;
        }
        if let Some(f) = &self.time_format {
            opts.time_format = TimeFormat::Custom(f.clone());
        }
        if let Some(t) = self.customer_id_type {
            opts.customer_id_type = t;
        }
        if let Some(d) = self.currency_decimals {
            opts.currency_decimals = check_decimals(d).map_err(key("currency_decimals"))?;
        }
        if let Some(a) = &self.as_of {
            opts.as_of = Some(parse_as_of(a).map_err(key("as_of"))?);
        }
        if let Some(m) = &self.margin {
            let text = match m {
                toml::Value::String(s) => s.clone(),
                toml::Value::Float(f) => format!("{f}"),
                toml::Value::Integer(i) => i.to_string(),
                other => {
                    return Err(Error::Usage(format!(
                        "margin must be a number, got {other}"
                    )));
                }
            };
            opts.margin = parse_margin(&text).map_err(key("margin"))?;
        }
        if let Some(p) = &self.on_bad_rows {
            opts.on_bad_rows = p
                .parse()
                .map_err(|e| Error::Usage(format!("on_bad_rows: {e}")))?;
        }
        Ok(())
    }
}
#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = toml::from_str::<ConfigFile>("[columns]\ncustomr = \"id\"\n").unwrap_err();
        assert!(err.to_string().contains("customr"), "{err}");
        let err = toml::from_str::<ConfigFile>("[input]\nheader = \"yes\"\n").unwrap_err();
        assert!(err.to_string().contains("header") || err.to_string().contains("bool"));
    }

    #[test]
    fn config_applies() {
        let cfg: ConfigFile = toml::from_str(
            "[input]\ndelimiter = \";\"\nmargin = 0.3\nas_of = \"1970-01-11\"\non_bad_rows = \"skip\"\n\
             [columns]\ncustomer = \"card\"\n",
        )
        .unwrap();
        let mut opts = LoadOptions::default();
        cfg.input.apply(&mut opts).unwrap();
        assert_eq!(opts.delimiter, b';');
        assert_eq!(opts.as_of, Some(10));
        assert_eq!(opts.on_bad_rows, BadRowPolicy::Skip);
        assert_eq!(opts.margin.apply(10).unwrap(), 3);
        assert_eq!(cfg.columns.name(Role::Customer), "card");
        assert_eq!(cfg.columns.name(Role::Time), "ts");
    }

    #[test]
    fn cluster_limits_go_with_the_cluster_engine() {
        let run: RunSettings = toml::from_str("stall_timeout = 7\n").unwrap();
        let err = run.engine(&["x.parquet".into()]).unwrap_err().to_string();
        assert!(
            err.contains("[run] wait_for_executors and stall_timeout"),
            "{err}"
        );
    }

    #[cfg(feature = "distributed")]
    #[test]
    fn cluster_limits_reach_the_engine() {
        let run: RunSettings = toml::from_str(
            "engine = \"ballista\"\nscheduler = \"df://127.0.0.1:50050\"\n\
             wait_for_executors = 5\nstall_timeout = 7\n",
        )
        .unwrap();
        match run.engine(&["x.parquet".into()]).unwrap().engine {
            crate::engine::Engine::Ballista {
                wait_for_executors_secs,
                stall_timeout_secs,
                ..
            } => assert_eq!((wait_for_executors_secs, stall_timeout_secs), (5, 7)),
            other => panic!("not the cluster engine: {other:?}"),
        }
    }

    #[test]
    fn policies_parse() {
        assert_eq!("skip".parse::<BadRowPolicy>(), Ok(BadRowPolicy::Skip));
        assert_eq!(
            "quarantine=bad.csv".parse::<BadRowPolicy>(),
            Ok(BadRowPolicy::Quarantine("bad.csv".into()))
        );
        assert!("quarantine=".parse::<BadRowPolicy>().is_err());
        assert!("drop".parse::<BadRowPolicy>().is_err());
    }
}

/// The `[run]` table of a config file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSettings {
    /// Where dated run directories and the `latest` pointer live.
    pub output_dir: Option<PathBuf>,
    /// Segment file format: parquet (default), csv or jsonl.
    pub segments_format: Option<SegmentsFormat>,
    /// Write the HTML report into the run directory (default true).
    pub report: Option<bool>,
    /// Keep the compacted history (`state.parquet`, `state.json`) in each run directory
    /// and read only new input files on top of the previous run's state (default false).
    pub incremental: Option<bool>,
    /// Score out of core in this many hash partitions (see `custvalue segments
    /// --partitions`); the report, which needs every line, is then not written.
    pub partitions: Option<usize>,
    /// Rows per batch of a Parquet/IPC input when scoring out of core.
    pub batch_rows: Option<u64>,
    /// Where partitions are spilled when scoring out of core.
    pub spill_dir: Option<PathBuf>,
    /// Where the per-customer aggregation runs: "local" (default) or "ballista" (see
    /// `custvalue segments --engine`); the report, which needs every line, is then not written.
    pub engine: Option<crate::engine::EngineKind>,
    /// The Ballista scheduler, `df://host:port`.
    pub scheduler: Option<String>,
    /// Partitions of the cluster plan.
    pub cluster_partitions: Option<usize>,
    /// Give a cluster job up after this many seconds.
    pub cluster_timeout: Option<u64>,
    /// Wait this many seconds for a cluster executor before giving up (default 30).
    pub wait_for_executors: Option<u64>,
    /// Give a cluster job up when it finishes no task for this many seconds (default 600).
    pub stall_timeout: Option<u64>,
    /// The in-memory engine's limit ("2GiB", "800MB"); over it the lines are scored out
    /// of core. Default: three quarters of the machine's memory.
    pub memory_limit: Option<String>,
}

/// The format of the nightly run's segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentsFormat {
    #[default]
    Parquet,
    Csv,
    Jsonl,
}

impl SegmentsFormat {
    /// The file name extension, which also tells the writer the format.
    pub fn extension(self) -> &'static str {
        match self {
            SegmentsFormat::Parquet => "parquet",
            SegmentsFormat::Csv => "csv",
            SegmentsFormat::Jsonl => "jsonl",
        }
    }
}

impl RunSettings {
    /// The engine of the `[run]` table's settings for these inputs, checked, and why.
    pub fn engine(&self, inputs: &[String]) -> Result<crate::engine::Plan> {
        let stream = self.partitions.map(|partitions| {
            let d = crate::stream::StreamOptions::default();
            crate::stream::StreamOptions {
                partitions,
                batch_rows: self.batch_rows.unwrap_or(d.batch_rows),
                spill_dir: self.spill_dir.clone(),
            }
        });
        let memory_limit = self
            .memory_limit
            .as_deref()
            .map(crate::engine::parse_size)
            .transpose()
            .map_err(|e| Error::Usage(format!("[run] {e}")))?;
        let cluster_only = self.wait_for_executors.is_some() || self.stall_timeout.is_some();
        if cluster_only && self.engine != Some(crate::engine::EngineKind::Ballista) {
            return Err(Error::Usage(
                "[run] wait_for_executors and stall_timeout go with engine = \"ballista\"".into(),
            ));
        }
        crate::engine::Engine::plan(
            &crate::engine::EngineSettings {
                kind: self.engine.unwrap_or_default(),
                scheduler: self.scheduler.clone(),
                cluster_partitions: self.cluster_partitions,
                cluster_timeout: self.cluster_timeout,
                stream,
                memory_limit,
                spill_dir: self.spill_dir.clone(),
            },
            inputs,
        )
        .map(|plan| crate::engine::Plan {
            engine: plan
                .engine
                .with_cluster_limits(self.wait_for_executors, self.stall_timeout),
            why: plan.why,
        })
        .map_err(|e| match e {
            Error::Usage(m) => Error::Usage(format!("[run] {m}")),
            other => other,
        })
    }
}
