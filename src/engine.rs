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

/// Default wait, in seconds, for a scheduler without executors to get one before a job
/// is given up.
pub const DEFAULT_WAIT_FOR_EXECUTORS_SECS: u64 = 30;

/// Default time, in seconds, a cluster job may go without finishing a task before it is
/// reported as stalled and given up.
pub const DEFAULT_STALL_TIMEOUT_SECS: u64 = 600;

/// A Ballista scheduler's address, as every command takes it: `host:port` or
/// `df://host:port` (the two are the same scheduler).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SchedulerAddress {
    pub host: String,
    pub port: u16,
}

impl SchedulerAddress {
    /// Reads `host:port` or `df://host:port` (an IPv6 host in brackets, `[::1]:50050`);
    /// anything else is refused, naming the value.
    pub fn parse(text: &str) -> Result<SchedulerAddress> {
        let bad = || {
            Error::Usage(format!(
                "scheduler {text:?}: give the scheduler as host:port or df://host:port \
                 (e.g. localhost:50050 or df://localhost:50050)"
            ))
        };
        let rest = text.trim();
        let rest = rest.strip_prefix("df://").unwrap_or(rest);
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let (host, port) = match rest.strip_prefix('[') {
            Some(v6) => {
                let (host, port) = v6.split_once(']').ok_or_else(bad)?;
                (host, port.strip_prefix(':').ok_or_else(bad)?)
            }
            None => rest.rsplit_once(':').ok_or_else(bad)?,
        };
        let host_ok = !host.is_empty()
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'))
            && (rest.starts_with('[') || !host.contains(':'));
        let port: u16 = port.parse().map_err(|_| bad())?;
        if !host_ok || port == 0 {
            return Err(bad());
        }
        Ok(SchedulerAddress {
            host: host.to_string(),
            port,
        })
    }

    /// The address as a Ballista client takes it, `df://host:port`.
    pub fn url(&self) -> String {
        format!("df://{self}")
    }
}

impl std::fmt::Display for SchedulerAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

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
    /// The Ballista scheduler, `host:port` or `df://host:port`.
    pub scheduler: Option<String>,
    /// Partitions of the cluster plan.
    pub cluster_partitions: Option<usize>,
    /// Give a cluster job up after this many seconds.
    pub cluster_timeout: Option<u64>,
    /// Score out of core with these partitions.
    pub stream: Option<StreamOptions>,
    /// Bytes the in-memory engine may take; above it the lines are scored out of core
    /// (unless `stream` says how). `None`: three quarters of the machine's memory.
    pub memory_limit: Option<u64>,
    /// Where partitions chosen by the memory limit are spilled (`None`: the system's
    /// temporary directory).
    pub spill_dir: Option<std::path::PathBuf>,
}

/// Bytes the in-memory engine takes per line, about: the line columns, the decoded
/// batches, ids, the summary and the outputs (measured 64-70 at 10M lines, up to 120
/// with long ids; the larger figure is assumed).
pub const BYTES_PER_LINE: u64 = 120;

/// The engine chosen for an input, and why, in a sentence for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub engine: Engine,
    pub why: String,
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
        /// Seconds to wait for an executor when the scheduler has none.
        wait_for_executors_secs: u64,
        /// Seconds a job may go without finishing a task before it counts as stalled.
        stall_timeout_secs: u64,
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
    /// How the cluster job gets on, from the scheduler's status: a sentence such as
    /// "pass 2 of 2: 1 of 2 stages, 5 of 8 tasks done".
    ClusterProgress(&'a str),
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
                let scheduler = SchedulerAddress::parse(scheduler)?;
                let partitions = s.cluster_partitions.unwrap_or(DEFAULT_CLUSTER_PARTITIONS);
                if partitions == 0 {
                    return Err(Error::Usage("cluster partitions must be at least 1".into()));
                }
                if !cfg!(feature = "distributed") {
                    return Err(Error::Usage(
                        "this custvalue was built without the distributed engine: build it \
                         with `cargo build --release --features distributed`"
                            .into(),
                    ));
                }
                Ok(Engine::Ballista {
                    scheduler: scheduler.url(),
                    partitions,
                    timeout_secs: s.cluster_timeout.unwrap_or(DEFAULT_CLUSTER_TIMEOUT_SECS),
                    wait_for_executors_secs: DEFAULT_WAIT_FOR_EXECUTORS_SECS,
                    stall_timeout_secs: DEFAULT_STALL_TIMEOUT_SECS,
                })
            }
        }
    }

    /// Chooses the engine as [`Engine::choose`] does, and for the local engine without
    /// partitions, in memory or out of core by what the input would take in memory
    /// against the memory limit (the partitions chosen so that each fits well within it).
    pub fn plan(s: &EngineSettings, inputs: &[String]) -> Result<Plan> {
        let engine = Engine::choose(s)?;
        if engine != Engine::InMemory {
            let why = match &engine {
                Engine::OutOfCore(so) => {
                    format!("scoring out of core in {} partitions", so.partitions)
                }
                _ => "aggregating on the cluster".to_string(),
            };
            return Ok(Plan { engine, why });
        }
        let limit = match s.memory_limit {
            Some(limit) => limit,
            None => match machine_memory() {
                Some(total) => total / 4 * 3,
                None => {
                    return Ok(Plan {
                        engine,
                        why: "in memory (the machine's memory is not known)".into(),
                    });
                }
            },
        };
        let lines = crate::load::estimate_lines(inputs)?;
        let need = lines.saturating_mul(BYTES_PER_LINE);
        let about = format!(
            "about {} lines, about {} in memory",
            crate::output::thousands(lines),
            bytes_text(need)
        );
        if need <= limit {
            return Ok(Plan {
                engine,
                why: format!(
                    "in memory: {about}, within the memory limit of {}",
                    bytes_text(limit)
                ),
            });
        }
        // Two partitions are in memory at once (one scored while the next is read); each
        // is kept to an eighth of the limit.
        let partitions = need
            .div_ceil((limit / 8).max(1))
            .next_power_of_two()
            .clamp(8, 4096) as usize;
        let so = StreamOptions {
            partitions,
            spill_dir: s.spill_dir.clone(),
            ..StreamOptions::default()
        };
        Ok(Plan {
            engine: Engine::OutOfCore(so),
            why: format!(
                "out of core in {partitions} partitions: {about}, over the memory limit of {}",
                bytes_text(limit)
            ),
        })
    }

    /// The cluster engine with other limits on waiting for an executor and on a job that
    /// finishes no task (seconds; `None` keeps the limit); other engines are unchanged.
    pub fn with_cluster_limits(
        mut self,
        wait_for_executors: Option<u64>,
        stall_timeout: Option<u64>,
    ) -> Engine {
        if let Engine::Ballista {
            wait_for_executors_secs,
            stall_timeout_secs,
            ..
        } = &mut self
        {
            *wait_for_executors_secs = wait_for_executors.unwrap_or(*wait_for_executors_secs);
            *stall_timeout_secs = stall_timeout.unwrap_or(*stall_timeout_secs);
        }
        self
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
                let (report, seg) = self.segment_on_cluster(opts, settings, &mut |p| {
                    watch(Phase::ClusterProgress(p));
                })?;
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
        progress: &mut dyn FnMut(&str),
    ) -> Result<(LoadReport, Segmentation)> {
        use std::time::Duration;
        let Engine::Ballista {
            scheduler,
            partitions,
            timeout_secs,
            wait_for_executors_secs,
            stall_timeout_secs,
        } = self
        else {
            unreachable!("called for the ballista engine only")
        };
        let mut cluster = crate::distributed::ClusterOptions::ballista(scheduler.clone());
        cluster.partitions = *partitions;
        cluster.timeout = Some(Duration::from_secs((*timeout_secs).max(1)));
        if let crate::distributed::Engine::Ballista { limits, .. } = &mut cluster.engine {
            limits.wait_for_executors = Duration::from_secs(*wait_for_executors_secs);
            limits.stall_timeout = Duration::from_secs((*stall_timeout_secs).max(1));
        }
        let done =
            crate::distributed::segment_on_cluster_watched(opts, settings, &cluster, progress)?;
        Ok((done.report, done.segmentation))
    }

    /// Without the `distributed` feature there is no cluster engine ([`Engine::choose`]
    /// refuses it first).
    #[cfg(not(feature = "distributed"))]
    fn segment_on_cluster(
        &self,
        _opts: &LoadOptions,
        _settings: &AnalysisSettings,
        _progress: &mut dyn FnMut(&str),
    ) -> Result<(LoadReport, Segmentation)> {
        Err(Error::Usage(
            "this custvalue was built without the distributed engine".into(),
        ))
    }
}

/// The memory this process may use: the machine's (MemTotal of /proc/meminfo), or its
/// control group's limit when that is lower.
pub fn machine_memory() -> Option<u64> {
    let total = std::fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().strip_suffix("kB"))
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|kib| kib * 1024)
    });
    let cgroup = std::fs::read_to_string("/sys/fs/cgroup/memory.max")
        .ok()
        .and_then(|v| v.trim().parse::<u64>().ok());
    match (total, cgroup) {
        (Some(t), Some(c)) => Some(t.min(c)),
        (t, c) => t.or(c),
    }
}

/// Parses a memory size: `2GiB`, `800MB`, `1.5G`, `512MiB`, `64k`, or bytes.
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = (&t[..split], t[split..].trim());
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "kib" => 1 << 10,
        "m" | "mb" => 1_000_000,
        "mib" => 1 << 20,
        "g" | "gb" => 1_000_000_000,
        "gib" => 1 << 30,
        "t" | "tb" => 1_000_000_000_000,
        "tib" => 1 << 40,
        _ => 0,
    };
    let n: f64 = number.parse().unwrap_or(f64::NAN);
    let bytes = n * scale as f64;
    if scale == 0 || !(bytes >= 1.0 && bytes < 1e18) {
        return Err(Error::Usage(format!(
            "memory limit {text:?}: write a size like 2GiB, 800MB or 1.5G"
        )));
    }
    Ok(bytes as u64)
}

/// Bytes for a person: "1.9 GiB", "640 MiB".
fn bytes_text(bytes: u64) -> String {
    if bytes >= 1 << 30 {
        format!("{:.1} GiB", bytes as f64 / f64::from(1u32 << 30))
    } else {
        format!("{} MiB", bytes.div_ceil(1 << 20))
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
        assert_eq!(
            Engine::choose(&EngineSettings::default()).unwrap(),
            Engine::InMemory
        );
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
                    wait_for_executors_secs: DEFAULT_WAIT_FOR_EXECUTORS_SECS,
                    stall_timeout_secs: DEFAULT_STALL_TIMEOUT_SECS,
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

    #[test]
    fn a_scheduler_is_host_port_with_or_without_df() {
        let at = |h: &str, p: u16| SchedulerAddress {
            host: h.into(),
            port: p,
        };
        assert_eq!(
            SchedulerAddress::parse("localhost:50050").unwrap(),
            at("localhost", 50050)
        );
        assert_eq!(
            SchedulerAddress::parse("df://10.0.0.7:50050").unwrap(),
            at("10.0.0.7", 50050)
        );
        let v6 = SchedulerAddress::parse("df://[::1]:7/").unwrap();
        assert_eq!(v6, at("::1", 7));
        assert_eq!(v6.url(), "df://[::1]:7");
        assert_eq!(at("h", 1).url(), "df://h:1");
        for bad in [
            "",
            "localhost",
            "df://localhost",
            "http://h:1",
            "df://df://h:1",
            "h:0",
            "h:70000",
            "h:port",
            ":50050",
            "h /x:1",
            "::1:50050",
        ] {
            let e = SchedulerAddress::parse(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn sizes_parse_in_decimal_and_binary_units() {
        assert_eq!(parse_size("2GiB").unwrap(), 2 << 30);
        assert_eq!(parse_size("800MB").unwrap(), 800_000_000);
        assert_eq!(parse_size("1.5G").unwrap(), 1_500_000_000);
        assert_eq!(parse_size(" 512 mib ").unwrap(), 512 << 20);
        assert_eq!(parse_size("4096").unwrap(), 4096);
        for bad in ["", "GiB", "2 GB per", "-1G", "0", "2XB"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_plan_goes_out_of_core_only_over_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tx.csv");
        // 1,001 lines: a header of 31 bytes, then lines of 27.
        let mut text = String::from("customer_id,ts,amount,category\n");
        for i in 0..1_000 {
            text.push_str(&format!(
                "c{:05},2024-01-{:02},{:>6},x\n",
                i,
                1 + i % 28,
                i % 997
            ));
        }
        assert_eq!(text.len(), 31 + 1_000 * 27);
        std::fs::write(&path, &text).unwrap();
        let inputs = [path.to_str().unwrap().to_string()];
        let lines = crate::load::estimate_lines(&inputs).unwrap();
        assert!((990..=1_010).contains(&lines), "{lines}");
        let plan = |limit: u64| {
            Engine::plan(
                &EngineSettings {
                    memory_limit: Some(limit),
                    ..Default::default()
                },
                &inputs,
            )
            .unwrap()
        };
        let roomy = plan(1 << 30);
        assert_eq!(roomy.engine, Engine::InMemory);
        assert!(
            roomy.why.starts_with("in memory: about 1,0"),
            "{}",
            roomy.why
        );
        // 1,001 lines × 120 bytes = 120 kB, an eighth of 64 kB a partition: 16.
        let tight = plan(64_000);
        match &tight.engine {
            Engine::OutOfCore(so) => assert_eq!(so.partitions, 16),
            other => panic!("{other:?}"),
        }
        assert!(tight.why.contains("over the memory limit"), "{}", tight.why);
        // Partitions given by the user are kept, whatever the limit.
        let given = Engine::plan(
            &EngineSettings {
                memory_limit: Some(1),
                stream: Some(StreamOptions {
                    partitions: 3,
                    ..StreamOptions::default()
                }),
                ..Default::default()
            },
            &inputs,
        )
        .unwrap();
        assert!(matches!(given.engine, Engine::OutOfCore(ref so) if so.partitions == 3));
    }
}
