//! A Ballista scheduler or executor started from this binary (`custvalue cluster
//! scheduler|executor`), so a test or a small cluster needs no second install. Both are
//! Ballista's own servers (`ballista-scheduler`, `ballista-executor` as libraries) with
//! in-memory cluster state; they run until interrupted.
//!
//! Not for: submitting work (see the parent module).

use std::sync::Arc;

use ballista_executor::executor_process::{ExecutorProcessConfig, start_executor_process};
use ballista_scheduler::cluster::BallistaCluster;
use ballista_scheduler::config::SchedulerConfig;
use ballista_scheduler::scheduler_process::start_server;

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

/// Runs a scheduler until the process is interrupted.
pub fn run_scheduler(o: &SchedulerOptions) -> Result<()> {
    let addr = format!("{}:{}", o.bind_host, o.port)
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
    runtime()?.block_on(async move {
        let cluster = BallistaCluster::new_from_config(&config)
            .await
            .map_err(|e| Error::Cluster(format!("scheduler: {e}")))?;
        tokio::select! {
            r = start_server(cluster, addr, Arc::new(config)) => {
                r.map_err(|e| Error::Cluster(format!("scheduler on {addr}: {e}")))
            }
            _ = tokio::signal::ctrl_c() => Ok(()),
        }
    })
}

/// Runs an executor until the process is interrupted.
pub fn run_executor(o: &ExecutorOptions) -> Result<()> {
    let mut config = ExecutorProcessConfig {
        bind_host: o.bind_host.clone(),
        external_host: o.external_host.clone(),
        port: o.port,
        grpc_port: o.grpc_port,
        scheduler_host: o.scheduler_host.clone(),
        scheduler_port: o.scheduler_port,
        work_dir: o.work_dir.clone(),
        executor_heartbeat_interval_seconds: o.heartbeat_secs.max(1),
        scheduler_connect_timeout_seconds: 30,
        ..ExecutorProcessConfig::default()
    };
    if let Some(n) = o.concurrency {
        config.vcores = n.max(1);
    }
    runtime()?.block_on(async move {
        start_executor_process(Arc::new(config))
            .await
            .map_err(|e| Error::Cluster(format!("executor: {e}")))
    })
}
