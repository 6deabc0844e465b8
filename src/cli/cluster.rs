//! `custvalue cluster`: a Ballista scheduler or executor from this binary (cargo feature
//! `distributed`), for tests and small clusters, and what a scheduler runs.

use clap::{Args, Subcommand};

use custvalue::Result;
use custvalue::distributed::cluster::{
    ExecutorOptions, SchedulerOptions, run_executor, run_scheduler,
};
use custvalue::distributed::status::{self, ClusterStatus};
use custvalue::engine::SchedulerAddress;

use super::Ctx;
use super::table::Table;

const EXAMPLES: &str = "\
Examples (one machine, three terminals):
  custvalue cluster scheduler --port 50050
  custvalue cluster executor --scheduler localhost:50050 --port 50051 --grpc-port 50052
  custvalue segments --input '/shared/tx/*.parquet' --engine ballista \\
      --scheduler df://localhost:50050 --out segments.parquet
  custvalue cluster status --scheduler df://localhost:50050

A scheduler is given as host:port or df://host:port, to every command alike.

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
    /// The executors registered with a scheduler and its jobs.
    Status(StatusArgs),
}

const EXECUTOR_EXAMPLES: &str = "\
Examples:
  custvalue cluster executor --scheduler localhost:50050
  custvalue cluster executor --scheduler df://sched-host:50050 --bind 0.0.0.0 \\
      --external-host worker-3 --concurrency 8 --work-dir /scratch/ballista
  custvalue cluster executor --scheduler sched-host:50050 --connect-timeout 300

The executor first checks that a scheduler answers at --scheduler; while none does it
says so on stderr and retries (after 1, 2, 4, ... up to 10 s). When it cannot reach or
register with the scheduler within --connect-timeout, or later goes that long without a
heartbeat acknowledged, it exits with code 3. A malformed --scheduler exits with code 2
at once.";

const STATUS_EXAMPLES: &str = "\
Examples:
  custvalue cluster status --scheduler df://localhost:50050
  custvalue cluster status --scheduler sched-host:50050

Prints each executor registered with the scheduler (id, host, Flight and gRPC ports, task
slots, last heartbeat) and the jobs queued or running (stages and tasks done). A stock
Ballista scheduler built without its REST API gives only the number of executors. Exit
code 3 when the scheduler cannot be reached.";

#[derive(Args, Debug)]
#[command(after_help = STATUS_EXAMPLES)]
pub struct StatusArgs {
    /// The scheduler, host:port or df://host:port.
    #[arg(long, default_value = "localhost:50050", value_name = "HOST:PORT")]
    pub scheduler: String,
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
#[command(after_help = EXECUTOR_EXAMPLES)]
pub struct ExecutorArgs {
    /// The scheduler, host:port or df://host:port.
    #[arg(long, default_value = "localhost:50050", value_name = "HOST:PORT")]
    pub scheduler: String,
    /// Seconds to keep trying to reach and register with the scheduler, and how long a
    /// registered executor may go without a heartbeat acknowledged, before it exits with
    /// code 3.
    #[arg(long, default_value_t = 60, value_name = "SECS")]
    pub connect_timeout: u64,
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

/// The `--scheduler` of a cluster command, checked before anything starts.
fn scheduler(text: &str) -> Result<SchedulerAddress> {
    SchedulerAddress::parse(text).map_err(|e| custvalue::Error::Usage(format!("--scheduler: {e}")))
}

pub fn run(ctx: &Ctx, args: &ClusterArgs) -> Result<i32> {
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
            let at = scheduler(&a.scheduler)?;
            let say = |text: &str| ctx.note(text);
            run_executor(
                &ExecutorOptions {
                    bind_host: a.bind.clone(),
                    external_host: Some(a.external_host.clone().unwrap_or_else(|| a.bind.clone())),
                    port: a.port,
                    grpc_port: a.grpc_port,
                    scheduler_host: at.host,
                    scheduler_port: at.port,
                    concurrency: a.concurrency,
                    work_dir: a.work_dir.clone(),
                    heartbeat_secs: a.heartbeat,
                    connect_timeout_secs: a.connect_timeout,
                },
                &say,
            )?;
        }
        Role::Status(a) => {
            let at = scheduler(&a.scheduler)?;
            let found = status::ask(&at.host, at.port)?;
            super::print(&render_status(&at, &found));
        }
    }
    Ok(0)
}

/// The executors and the queued or running jobs, as tables.
fn render_status(at: &SchedulerAddress, s: &ClusterStatus) -> String {
    let mut out = String::new();
    let live = s
        .live_executors
        .map_or("an unknown number of".to_string(), |n| n.to_string());
    out.push_str(&format!("scheduler {at}: {live} live executors\n"));
    match &s.executors {
        Some(list) if list.is_empty() => out.push_str(&format!(
            "no executor is registered: start one with `custvalue cluster executor \
             --scheduler {at}`\n"
        )),
        Some(list) => {
            let mut t = Table::new([
                "executor",
                "host",
                "flight port",
                "grpc port",
                "task slots",
                "last heartbeat",
            ]);
            let opt = |v: Option<String>| v.unwrap_or_else(|| "?".into());
            for e in list {
                t.row([
                    e.id.clone(),
                    e.host.clone(),
                    e.port.to_string(),
                    opt(e.grpc_port.map(|p| p.to_string())),
                    opt(e.slots.map(|n| n.to_string())),
                    e.heartbeat_age(),
                ]);
            }
            out.push_str(&t.render());
        }
        None => out.push_str("(this scheduler does not list its executors)\n"),
    }
    match &s.jobs {
        Some(jobs) => {
            let active: Vec<_> = jobs.iter().filter(|j| j.is_active()).collect();
            if active.is_empty() {
                out.push_str("no job is queued or running\n");
            } else {
                let mut t = Table::new(["job", "name", "status", "progress"]);
                for j in active {
                    t.row([j.id.clone(), j.name.clone(), j.status.clone(), j.progress()]);
                }
                out.push_str(&t.render());
            }
        }
        None => out.push_str("(this scheduler does not list its jobs)\n"),
    }
    out
}
