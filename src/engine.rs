//! Where the per-customer aggregation runs: in this process (`local`, the default) or on
//! an Apache DataFusion Ballista cluster (`ballista`, cargo feature `distributed`). The
//! choice is made here so the commands and the nightly run share one set of rules.
//!
//! Not for: the cluster plan itself (see `distributed`).

use crate::config::LoadOptions;
use crate::error::{Error, Result};
use crate::load::LoadReport;
use crate::segments::{AnalysisSettings, Segmentation};

/// Default partitions of the cluster plan.
pub const DEFAULT_CLUSTER_PARTITIONS: usize = 4;

/// Default limit on a cluster job, in seconds: a job that neither finishes nor fails in
/// this time (a hung cluster) is given up with exit code 3.
pub const DEFAULT_CLUSTER_TIMEOUT_SECS: u64 = 6 * 3600;

/// Where the aggregation runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Engine {
    Local,
    /// A Ballista scheduler (`df://host:port`) and the plan's partitions.
    Ballista {
        scheduler: String,
        partitions: usize,
        /// Seconds after which the job is given up.
        timeout_secs: u64,
    },
}

impl Engine {
    /// Reads `--engine`, `--scheduler` and `--cluster-partitions` (or the same keys of
    /// `[run]`).
    pub fn from_settings(
        engine: Option<&str>,
        scheduler: Option<&str>,
        partitions: Option<usize>,
    ) -> Result<Engine> {
        match engine.unwrap_or("local") {
            "local" => {
                if scheduler.is_some() || partitions.is_some() {
                    return Err(Error::Usage(
                        "--scheduler and --cluster-partitions go with --engine ballista".into(),
                    ));
                }
                Ok(Engine::Local)
            }
            "ballista" => {
                let scheduler = scheduler.ok_or_else(|| {
                    Error::Usage(
                        "--engine ballista needs --scheduler df://host:port (the Ballista \
                         scheduler; `custvalue cluster scheduler` starts one)"
                            .into(),
                    )
                })?;
                if !scheduler.starts_with("df://") {
                    return Err(Error::Usage(format!(
                        "--scheduler {scheduler:?}: give the scheduler as df://host:port"
                    )));
                }
                let partitions = partitions.unwrap_or(DEFAULT_CLUSTER_PARTITIONS);
                if partitions == 0 {
                    return Err(Error::Usage(
                        "--cluster-partitions must be at least 1".into(),
                    ));
                }
                if !cfg!(feature = "distributed") {
                    return Err(Error::Usage(
                        "this custvalue was built without the distributed engine: build it \
                         with `cargo build --release --features distributed`"
                            .into(),
                    ));
                }
                Ok(Engine::Ballista {
                    scheduler: scheduler.to_string(),
                    partitions,
                    timeout_secs: DEFAULT_CLUSTER_TIMEOUT_SECS,
                })
            }
            other => Err(Error::Usage(format!(
                "--engine {other:?}: choose local or ballista"
            ))),
        }
    }

    /// Sets the job time limit of a cluster engine (seconds).
    pub fn with_timeout(self, secs: Option<u64>) -> Engine {
        match (self, secs) {
            (
                Engine::Ballista {
                    scheduler,
                    partitions,
                    ..
                },
                Some(t),
            ) => Engine::Ballista {
                scheduler,
                partitions,
                timeout_secs: t,
            },
            (e, _) => e,
        }
    }

    pub fn is_local(&self) -> bool {
        matches!(self, Engine::Local)
    }
}

/// Scores every customer with the aggregation on the cluster (the segmentation and how
/// the input was read).
#[cfg(feature = "distributed")]
pub fn segment_on_cluster(
    engine: &Engine,
    opts: &LoadOptions,
    settings: &AnalysisSettings,
) -> Result<(LoadReport, Segmentation)> {
    let Engine::Ballista {
        scheduler,
        partitions,
        timeout_secs,
    } = engine
    else {
        return Err(Error::Usage("not a cluster engine".into()));
    };
    let mut cluster = crate::distributed::ClusterOptions::ballista(scheduler.clone());
    cluster.partitions = *partitions;
    cluster.timeout = Some(std::time::Duration::from_secs((*timeout_secs).max(1)));
    let done = crate::distributed::segment_on_cluster(opts, settings, &cluster)?;
    Ok((done.report, done.segmentation))
}

/// Without the `distributed` feature there is no cluster engine ([`Engine::from_settings`]
/// refuses it first).
#[cfg(not(feature = "distributed"))]
pub fn segment_on_cluster(
    _engine: &Engine,
    _opts: &LoadOptions,
    _settings: &AnalysisSettings,
) -> Result<(LoadReport, Segmentation)> {
    Err(Error::Usage(
        "this custvalue was built without the distributed engine".into(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_is_the_default_and_cluster_flags_need_ballista() {
        assert_eq!(
            Engine::from_settings(None, None, None).unwrap(),
            Engine::Local
        );
        assert_eq!(
            Engine::from_settings(Some("local"), None, None).unwrap(),
            Engine::Local
        );
        let e = Engine::from_settings(None, Some("df://h:1"), None).unwrap_err();
        assert!(e.to_string().contains("--engine ballista"), "{e}");
        let e = Engine::from_settings(Some("spark"), None, None).unwrap_err();
        assert!(e.to_string().contains("local or ballista"), "{e}");
        let e = Engine::from_settings(Some("ballista"), None, None).unwrap_err();
        assert!(e.to_string().contains("--scheduler"), "{e}");
        let e = Engine::from_settings(Some("ballista"), Some("http://h:1"), None).unwrap_err();
        assert!(e.to_string().contains("df://"), "{e}");
        let e = Engine::from_settings(Some("ballista"), Some("df://h:1"), Some(0)).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let chosen = Engine::from_settings(Some("ballista"), Some("df://h:1"), None);
        if cfg!(feature = "distributed") {
            assert_eq!(
                chosen.unwrap(),
                Engine::Ballista {
                    scheduler: "df://h:1".into(),
                    partitions: DEFAULT_CLUSTER_PARTITIONS,
                    timeout_secs: DEFAULT_CLUSTER_TIMEOUT_SECS,
                }
            );
        } else {
            assert!(
                chosen
                    .unwrap_err()
                    .to_string()
                    .contains("--features distributed")
            );
        }
    }
}
