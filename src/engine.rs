//! Where the per-customer aggregation runs, chosen once for the commands and the nightly
//! run alike: every line in memory (the default), out of core in hash partitions of the
//! customer id (see `stream`), or on an Apache DataFusion Ballista cluster (cargo feature
//! `distributed`, see `distributed`). Every engine gives the same segmentation, byte for
//! byte once written.
//!
//! Not for: the cluster plan or the partition spill themselves.

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::load::{LoadOptions, LoadReport};
use crate::segments::{AnalysisSettings, Segmentation, segment};
use crate::stream::StreamOptions;
use crate::transactions::Transactions;

/// Default partitions of the cluster plan.
pub const DEFAULT_CLUSTER_PARTITIONS: usize = 4;

/// Default limit on a cluster job, in seconds: a job that neither finishes nor fails in
/// this time (a hung cluster) is given up with exit code 3.
pub const DEFAULT_CLUSTER_TIMEOUT_SECS: u64 = 6 * 3600;

/// The engine a user names (`--engine`, `[run] engine`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EngineKind {
    /// This process: in memory, or out of core with partitions.
    #[default]
    Local,
    /// A Ballista cluster.
    Ballista,
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "local" => Ok(EngineKind::Local),
            "ballista" => Ok(EngineKind::Ballista),
            other => Err(format!("engine {other:?}: choose local or ballista")),
        }
    }
}

/// What a user asks of the engine: the engine's settings as the command line and the
/// `[run]` table give them, before they are checked.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EngineSettings {
    pub kind: EngineKind,
    /// The Ballista scheduler, `df://host:port`.
    pub scheduler: Option<String>,
    /// Partitions of the cluster plan.
    pub cluster_partitions: Option<usize>,
    /// Give a cluster job up after this many seconds.
    pub cluster_timeout: Option<u64>,
    /// Score out of core with these partitions.
    pub stream: Option<StreamOptions>,
}

/// Where the aggregation runs.
#[derive(Debug, Clone, PartialEq)]
pub enum Engine {
    /// Every line in memory.
    InMemory,
    /// Out of core: the lines spilled into hash partitions of the customer id.
    OutOfCore(StreamOptions),
    /// A Ballista scheduler (`df://host:port`) and the plan's partitions.
    Ballista {
        scheduler: String,
        partitions: usize,
        /// Seconds after which the job is given up.
        timeout_secs: u64,
    },
}

/// A stage of [`Engine::segment`], told to its watcher.
#[derive(Debug)]
pub enum Phase<'a> {
    /// Reading every line into memory.
    Loading,
    /// Scoring the customers of the lines in memory.
    Scoring,
    /// Spilling and scoring out of core in this many partitions.
    OutOfCore(usize),
    /// Aggregating on the cluster.
    Cluster,
    /// Every row has been read: how.
    Read(&'a LoadReport),
}

/// What an engine gives back.
pub struct Scored {
    pub report: LoadReport,
    pub segmentation: Segmentation,
    /// The lines, when asked for and the engine held them all in memory.
    pub transactions: Option<Transactions>,
    /// How many lines were held, when the engine held them all in memory.
    pub n_lines: Option<usize>,
}

impl Engine {
    /// Checks the settings and picks the engine.
    pub fn choose(s: &EngineSettings) -> Result<Engine> {
        match s.kind {
            EngineKind::Local => {
                if s.scheduler.is_some() || s.cluster_partitions.is_some() {
                    return Err(Error::Usage(
                        "a scheduler and cluster partitions go with the ballista engine".into(),
                    ));
                }
                Ok(match &s.stream {
                    Some(so) => Engine::OutOfCore(so.clone()),
                    None => Engine::InMemory,
                })
            }
            EngineKind::Ballista => {
                if s.stream.is_some() {
                    return Err(Error::Usage(
                        "the ballista engine aggregates on the cluster: partitions out of core \
                         go with the local engine only"
                            .into(),
                    ));
                }
                let scheduler = s.scheduler.as_deref().ok_or_else(|| {
                    Error::Usage(
                        "the ballista engine needs a scheduler, df://host:port (`custvalue \
                         cluster scheduler` starts one)"
                            .into(),
                    )
                })?;
                if !scheduler.starts_with("df://") {
                    return Err(Error::Usage(format!(
                        "scheduler {scheduler:?}: give the scheduler as df://host:port"
                    )));
                }
                let partitions = s.cluster_partitions.unwrap_or(DEFAULT_CLUSTER_PARTITIONS);
                if partitions == 0 {
                    return Err(Error::Usage(
                        "cluster partitions must be at least 1".into(),
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
                    timeout_secs: s.cluster_timeout.unwrap_or(DEFAULT_CLUSTER_TIMEOUT_SECS),
                })
            }
        }
    }

    /// Whether the engine holds every line in memory (only then can the lines be kept
    /// for a report or a model).
    pub fn in_memory(&self) -> bool {
        matches!(self, Engine::InMemory)
    }

    /// Reads the input and scores every customer. `keep_lines` keeps the lines of an
    /// in-memory run for the caller. `watch` hears each phase as it begins and returns a
    /// guard dropped when the phase ends (a progress spinner, say; `()` for none).
    pub fn segment<G>(
        &self,
        opts: &LoadOptions,
        settings: &AnalysisSettings,
        keep_lines: bool,
        mut watch: impl FnMut(Phase<'_>) -> G,
    ) -> Result<Scored> {
        let (report, segmentation, transactions) = match self {
            Engine::InMemory => {
                let loaded = {
                    let _phase = watch(Phase::Loading);
                    crate::load::load(opts)?
                };
                watch(Phase::Read(&loaded.report));
                let seg = {
                    let _phase = watch(Phase::Scoring);
                    segment(&loaded.transactions, settings)?
                };
                let n_lines = Some(loaded.transactions.n_lines());
                let kept = if keep_lines {
                    Some(loaded.transactions)
                } else {
                    // Freed on the pool, beside whatever the caller does next.
                    let lines = loaded.transactions;
                    rayon::spawn(move || drop(lines));
                    None
                };
                return Ok(Scored {
                    report: loaded.report,
                    segmentation: seg,
                    transactions: kept,
                    n_lines,
                });
            }
            Engine::OutOfCore(so) => {
                let _phase = watch(Phase::OutOfCore(so.partitions));
                let s = crate::stream::segment_streaming(opts, settings, so)?;
                (s.report, s.segmentation, None)
            }
            Engine::Ballista { .. } => {
                let _phase = watch(Phase::Cluster);
                let (report, seg) = self.segment_on_cluster(opts, settings)?;
                (report, seg, None)
            }
        };
        watch(Phase::Read(&report));
        Ok(Scored {
            report,
            segmentation,
            transactions,
            n_lines: None,
        })
    }

    #[cfg(feature = "distributed")]
    fn segment_on_cluster(
        &self,
        opts: &LoadOptions,
        settings: &AnalysisSettings,
    ) -> Result<(LoadReport, Segmentation)> {
        let Engine::Ballista {
            scheduler,
            partitions,
            timeout_secs,
        } = self
        else {
            unreachable!("called for the ballista engine only")
        };
        let mut cluster = crate::distributed::ClusterOptions::ballista(scheduler.clone());
        cluster.partitions = *partitions;
        cluster.timeout = Some(std::time::Duration::from_secs((*timeout_secs).max(1)));
        let done = crate::distributed::segment_on_cluster(opts, settings, &cluster)?;
        Ok((done.report, done.segmentation))
    }

    /// Without the `distributed` feature there is no cluster engine ([`Engine::choose`]
    /// refuses it first).
    #[cfg(not(feature = "distributed"))]
    fn segment_on_cluster(
        &self,
        _opts: &LoadOptions,
        _settings: &AnalysisSettings,
    ) -> Result<(LoadReport, Segmentation)> {
        Err(Error::Usage(
            "this custvalue was built without the distributed engine".into(),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choose(kind: &str, scheduler: Option<&str>, partitions: Option<usize>) -> Result<Engine> {
        Engine::choose(&EngineSettings {
            kind: kind.parse().map_err(Error::Usage)?,
            scheduler: scheduler.map(str::to_string),
            cluster_partitions: partitions,
            ..Default::default()
        })
    }

    #[test]
    fn in_memory_is_the_default_and_cluster_settings_need_ballista() {
        assert_eq!(Engine::choose(&EngineSettings::default()).unwrap(), Engine::InMemory);
        assert_eq!(choose("local", None, None).unwrap(), Engine::InMemory);
        let so = StreamOptions::default();
        assert_eq!(
            Engine::choose(&EngineSettings {
                stream: Some(so.clone()),
                ..Default::default()
            })
            .unwrap(),
            Engine::OutOfCore(so.clone())
        );
        let e = choose("local", Some("df://h:1"), None).unwrap_err();
        assert!(e.to_string().contains("ballista engine"), "{e}");
        let e = choose("spark", None, None).unwrap_err();
        assert!(e.to_string().contains("local or ballista"), "{e}");
        let e = choose("ballista", None, None).unwrap_err();
        assert!(e.to_string().contains("needs a scheduler"), "{e}");
        let e = choose("ballista", Some("http://h:1"), None).unwrap_err();
        assert!(e.to_string().contains("df://"), "{e}");
        let e = choose("ballista", Some("df://h:1"), Some(0)).unwrap_err();
        assert!(e.to_string().contains("at least 1"), "{e}");
        let e = Engine::choose(&EngineSettings {
            kind: EngineKind::Ballista,
            scheduler: Some("df://h:1".into()),
            stream: Some(so),
            ..Default::default()
        })
        .unwrap_err();
        assert!(e.to_string().contains("local engine only"), "{e}");
        let chosen = choose("ballista", Some("df://h:1"), None);
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
