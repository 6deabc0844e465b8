//! `custvalue cluster`: a Ballista scheduler or executor from this binary (cargo feature
//! `distributed`), for tests and small clusters.

use clap::{Args, Subcommand};

use custvalue::Result;
use custvalue::distributed::cluster::{
    ExecutorOptions, SchedulerOptions, run_executor, run_scheduler,
};

use super::Ctx;

const EXAMPLES: &str = "\
Examples (one machine, three terminals):
  custvalue cluster scheduler --port 50050
  custvalue cluster executor --scheduler localhost:50050 --port 50051 --grpc-port 50052
  custvalue segments --input '/shared/tx/*.parquet' --engine ballista \\
      --scheduler df://localhost:50050 --out segments.parquet

Several machines: start the scheduler with --bind 0.0.0.0 --external-host <its name>, and
each executor with --bind 0.0.0.0 --external-host <its name> --scheduler <scheduler>:50050.
The Parquet inputs must be readable at the same path by the client and every executor.
An existing Ballista deployment (ballista-scheduler, ballista-executor 55) works as well:
point --scheduler at it. Both processes run until interrupted (Ctrl-C or SIGTERM).";

#[derive(Args, Debug)]
#[command(after_help = EXAMPLES)]
pub struct ClusterArgs {
    #[command(subcommand)]
    pub role: Role,
}

#[derive(Subcommand, Debug)]
pub enum Role {
    /// Start a Ballista scheduler (in-memory cluster state).
    Scheduler(SchedulerArgs),
    /// Start a Ballista executor that registers with a scheduler.
    Executor(ExecutorArgs),
}

#[derive(Args, Debug)]
pub struct SchedulerArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub bind: String,
    /// Host name that clients and executors use for this scheduler.
    #[arg(long, default_value = "localhost", value_name = "HOST")]
    pub external_host: String,
    /// gRPC port.
    #[arg(long, default_value_t = 50050, value_name = "PORT")]
    pub port: u16,
    /// Seconds without a heartbeat before an executor counts as lost (its tasks then run
    /// elsewhere, or the job fails cleanly).
    #[arg(long, default_value_t = 180, value_name = "SECS")]
    pub executor_timeout: u64,
}

#[derive(Args, Debug)]
pub struct ExecutorArgs {
    /// The scheduler, host:port.
    #[arg(long, default_value = "localhost:50050", value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "HOST")]
    pub bind: String,
    /// Host name that the scheduler, other executors and clients use for this executor
    /// [default: the bind address].
    #[arg(long, value_name = "HOST")]
    pub external_host: Option<String>,
    /// Arrow Flight port (shuffle data and results).
    #[arg(long, default_value_t = 50051, value_name = "PORT")]
    pub port: u16,
    /// gRPC port.
    #[arg(long, default_value_t = 50052, value_name = "PORT")]
    pub grpc_port: u16,
    /// Task slots [default: the number of cores].
    #[arg(long, value_name = "N")]
    pub concurrency: Option<usize>,
    /// Directory for shuffle files [default: a temporary directory].
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<String>,
    /// Seconds between heartbeats to the scheduler.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub heartbeat: u64,
}

pub fn run(_ctx: &Ctx, args: &ClusterArgs) -> Result<i32> {
    match &args.role {
        Role::Scheduler(a) => {
            run_scheduler(&SchedulerOptions {
                bind_host: a.bind.clone(),
                external_host: a.external_host.clone(),
                port: a.port,
                executor_timeout_secs: a.executor_timeout,
            })?;
        }
        Role::Executor(a) => {
            let (host, port) = a.scheduler.rsplit_once(':').ok_or_else(|| {
                custvalue::Error::Usage(format!("--scheduler {:?}: give host:port", a.scheduler))
            })?;
            let port = port.parse().map_err(|_| {
                custvalue::Error::Usage(format!("--scheduler {:?}: bad port", a.scheduler))
            })?;
            run_executor(&ExecutorOptions {
                bind_host: a.bind.clone(),
                external_host: Some(a.external_host.clone().unwrap_or_else(|| a.bind.clone())),
                port: a.port,
                grpc_port: a.grpc_port,
                scheduler_host: host.to_string(),
                scheduler_port: port,
                concurrency: a.concurrency,
                work_dir: a.work_dir.clone(),
                heartbeat_secs: a.heartbeat,
            })?;
        }
    }
    Ok(0)
}
