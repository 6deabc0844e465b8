//! A Ballista scheduler or executor started from this binary (`custvalue cluster
//! scheduler|executor`), so a test or a small cluster needs no second install. Both are
//! Ballista's own servers (`ballista-scheduler`, `ballista-executor` as libraries) with
//! in-memory cluster state; they run until interrupted.
//!
//! The scheduler serves, beside its gRPC on the same port, the status API of `status`
//! (executors, jobs, stages and tasks done). The executor checks first that a scheduler
//! answers at the address it was given, says so on stderr while it retries, and gives up
//! (exit code 3) when it cannot reach or register with it within its connect timeout, or
//! later loses it for as long.
//!
//! Not for: submitting work (see the parent module).

use std::sync::Arc;
use std::time::{Duration, Instant};

use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpcServer;
use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_executor::health::ExecutorHealth;
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::create_scheduler;
use ballista_scheduler::scheduler_server::SchedulerServer;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};

use super::status::Scheduler;
use crate::error::{Error, Result};

/// Scheduler settings.
#[derive(Debug, Clone)]
pub struct SchedulerOptions {
    pub bind_host: String,
    /// The host name clients and executors use to reach the scheduler.
    pub external_host: String,
    pub port: u16,
    /// Seconds without a heartbeat after which an executor counts as lost and its tasks
    /// are run elsewhere.
    pub executor_timeout_secs: u64,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        SchedulerOptions {
            bind_host: "127.0.0.1".into(),
            external_host: "localhost".into(),
            port: 50050,
            executor_timeout_secs: 180,
        }
    }
}

/// Executor settings.
#[derive(Debug, Clone)]
pub struct ExecutorOptions {
    pub bind_host: String,
    /// The host name the scheduler, other executors and clients use to reach it.
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle and results).
    pub port: u16,
    /// gRPC port.
    pub grpc_port: u16,
    pub scheduler_host: String,
    pub scheduler_port: u16,
    /// Task slots (default: the number of cores).
    pub concurrency: Option<usize>,
    /// Directory for shuffle files (default: a temporary directory).
    pub work_dir: Option<String>,
    pub heartbeat_secs: u64,
    /// Seconds to keep trying to reach and register with the scheduler (and, once
    /// registered, how long it may go unanswered) before giving up.
    pub connect_timeout_secs: u64,
}

impl Default for ExecutorOptions {
    fn default() -> Self {
        ExecutorOptions {
            bind_host: "127.0.0.1".into(),
            external_host: None,
            port: 50051,
            grpc_port: 50052,
            scheduler_host: "localhost".into(),
            scheduler_port: 50050,
            concurrency: None,
            work_dir: None,
            heartbeat_secs: 60,
            connect_timeout_secs: 60,
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(32 * 1024 * 1024)
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the async runtime: {e}")))
}

/// Runs a scheduler until the process is interrupted: Ballista's gRPC and the status
/// API on one port.
pub fn run_scheduler(o: &SchedulerOptions) -> Result<()> {
    let addr: std::net::SocketAddr = format!("{}:{}", o.bind_host, o.port)
        .parse()
        .map_err(|e| Error::Usage(format!("--bind {}: {e}", o.bind_host)))?;
    let timeout = o.executor_timeout_secs.max(1);
    let config = SchedulerConfig {
        bind_host: o.bind_host.clone(),
        external_host: o.external_host.clone(),
        bind_port: o.port,
        executor_timeout_seconds: timeout,
        expire_dead_executor_interval_seconds: (timeout / 4).clamp(1, 15),
        no_executors_grace_period_seconds: timeout,
        ..SchedulerConfig::default()
    };
    config
        .validate()
        .map_err(|e| Error::Usage(format!("scheduler settings: {e}")))?;
    runtime()?.block_on(async move {
        let config = Arc::new(config);
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| Error::Cluster(format!("scheduler: {e}")))?;
        let scheduler: SchedulerServer<LogicalPlanNode, PhysicalPlanNode> =
            create_scheduler(cluster, config.clone())
                .await
                .map_err(|e| Error::Cluster(format!("scheduler: {e}")))?;
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Cluster(format!("the scheduler cannot listen on {addr}: {e}")))?;
        // What `scheduler_process::start_server` serves (without the REST API this
        // build leaves out, or the Flight proxy it turns off), plus the status API.
        let grpc = SchedulerGrpcServer::new(scheduler.clone())
            .max_encoding_message_size(config.grpc_server_max_encoding_message_size as usize)
            .max_decoding_message_size(config.grpc_server_max_decoding_message_size as usize);
        let grpc = tonic::service::Routes::new(grpc).into_axum_router();
        let state = scheduler.state.clone();
        tokio::select! {
            r = super::status::serve(listener, grpc, state, Duration::from_secs(timeout)) => {
                r.map_err(|e| Error::Cluster(format!("scheduler on {addr}: {e}")))
            }
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// Runs an executor until the process is interrupted. `say` hears what it is doing
/// about the scheduler (unreachable and retrying, registered, lost), for stderr.
pub fn run_executor(o: &ExecutorOptions, say: &dyn Fn(&str)) -> Result<()> {
    let scheduler = Scheduler::new(o.scheduler_host.clone(), o.scheduler_port);
    let limit = Duration::from_secs(o.connect_timeout_secs.max(1));
    let health = ExecutorHealth::new();
    let mut config = ExecutorProcessConfig {
        bind_host: o.bind_host.clone(),
        external_host: o.external_host.clone(),
        port: o.port,
        grpc_port: o.grpc_port,
        // Ballista puts the host into a URL as it stands: an IPv6 host keeps brackets.
        scheduler_host: if o.scheduler_host.contains(':') {
            format!("[{}]", o.scheduler_host)
        } else {
            o.scheduler_host.clone()
        },
        scheduler_port: o.scheduler_port,
        work_dir: o.work_dir.clone(),
        executor_heartbeat_interval_seconds: o.heartbeat_secs.max(1),
        health: health.clone(),
        ..ExecutorProcessConfig::default()
    };
    if let Some(n) = o.concurrency {
        config.vcores = n.max(1);
    }
    let id = config.executor_id.clone();
    let described = format!(
        "executor {id} (flight port {}, grpc port {}, {} task slots)",
        config.port, config.grpc_port, config.vcores
    );
    runtime()?.block_on(async move {
        let started = Instant::now();
        reach(&scheduler, limit, say).await?;
        let left = limit.saturating_sub(started.elapsed()).as_secs().max(1);
        config.scheduler_connect_timeout_seconds = left.min(u64::from(u16::MAX)) as u16;
        let process = start_executor_process(Arc::new(config));
        tokio::pin!(process);
        let watch = watch_registration(&scheduler, &health, limit, started, &described, say);
        tokio::select! {
            r = &mut process => {
                r.map_err(|e| Error::Cluster(format!(
                    "the executor could not register with the scheduler at {scheduler}: {e}"
                )))?;
                if health.is_ready() {
                    Ok(())
                } else {
                    Err(Error::Cluster(format!(
                        "the executor stopped: the scheduler at {scheduler} no longer \
                         acknowledges its heartbeats (is the scheduler still running?)"
                    )))
                }
            }
            e = watch => Err(e),
        }
    })
}

/// Waits until a Ballista scheduler answers at `scheduler`, retrying with a growing
/// pause (1, 2, 4, … up to 10 s) and saying why; gives up after `limit`.
async fn reach(scheduler: &Scheduler, limit: Duration, say: &dyn Fn(&str)) -> Result<()> {
    let started = Instant::now();
    let mut pause = Duration::from_secs(1);
    loop {
        let left = limit.saturating_sub(started.elapsed());
        let probe = Scheduler {
            limit: left.clamp(Duration::from_millis(200), Duration::from_secs(5)),
            ..scheduler.clone()
        };
        let why = match probe.healthy().await {
            Ok(()) => return Ok(()),
            Err(why) => why.0,
        };
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(Error::Cluster(format!(
                "no Ballista scheduler answered at {scheduler} within {} s ({why}): start \
                 one there (`custvalue cluster scheduler --port {}`), or give the executor \
                 the address of a running one",
                limit.as_secs(),
                scheduler.port
            )));
        }
        let wait = pause.min(left);
        say(&format!(
            "cannot reach the scheduler at {scheduler}: {why}; retrying in {} s \
             (giving up {} s from now)",
            wait.as_secs_f64().ceil(),
            left.as_secs_f64().ceil()
        ));
        tokio::time::sleep(wait).await;
        pause = (pause * 2).min(Duration::from_secs(10));
    }
}

/// Returns (an error) only when the executor has not registered within `limit` of
/// `started`, or once registered has had no heartbeat acknowledged for `limit`.
async fn watch_registration(
    scheduler: &Scheduler,
    health: &ExecutorHealth,
    limit: Duration,
    started: Instant,
    described: &str,
    say: &dyn Fn(&str),
) -> Error {
    let mut acknowledged: Option<Instant> = None;
    let mut warned = false;
    loop {
        tokio::time::sleep(Duration::from_millis(200)).await;
        if health.is_ready() {
            if acknowledged.is_none() {
                say(&format!(
                    "registered with the scheduler at {scheduler} as {described}"
                ));
            } else if warned {
                say(&format!("the scheduler at {scheduler} answers again"));
            }
            acknowledged = Some(Instant::now());
            warned = false;
            continue;
        }
        match acknowledged {
            None if started.elapsed() >= limit => {
                return Error::Cluster(format!(
                    "the executor did not register with the scheduler at {scheduler} \
                     within {} s: check that the address is a Ballista 55 scheduler's \
                     and that the scheduler can reach this executor back",
                    limit.as_secs()
                ));
            }
            Some(last) if last.elapsed() >= limit => {
                return Error::Cluster(format!(
                    "lost the scheduler at {scheduler}: no heartbeat acknowledged for {} s \
                     (is it still running?)",
                    limit.as_secs()
                ));
            }
            Some(_) if !warned => {
                say(&format!(
                    "the scheduler at {scheduler} did not acknowledge a heartbeat; retrying \
                     (giving up after {} s)",
                    limit.as_secs()
                ));
                warned = true;
            }
            _ => {}
        }
    }
}
