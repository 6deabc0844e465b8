//! What a Ballista scheduler says about itself: the executors registered with it (host,
//! ports, task slots, last heartbeat) and its jobs (stages and tasks done), read over
//! plain HTTP on the scheduler's own port.
//!
//! Two sides of one small protocol. The client side reads `/readyz` (the number of live
//! executors, served by every Ballista 55 scheduler), `/api/executors` and `/api/jobs`
//! (Ballista's REST API, which a stock scheduler built with its `rest-api` feature serves
//! too; without it only the count is known). The server side is the same API, with task
//! counts added, served by `custvalue cluster scheduler` beside its gRPC (see
//! `cluster`): this build leaves Ballista's REST API out, as it would pull in crates of
//! its own.
//!
//! Not for: submitting work, or starting a scheduler.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use ballista_scheduler::state::SchedulerState;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// An executor the scheduler knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecutorInfo {
    pub id: String,
    pub host: String,
    /// Arrow Flight port (shuffle data and results).
    pub port: u16,
    /// gRPC port (a stock Ballista scheduler does not say).
    pub grpc_port: Option<u16>,
    /// Task slots (vcores).
    pub slots: Option<u32>,
    /// The last heartbeat, milliseconds since the Unix epoch.
    pub last_seen_ms: Option<u64>,
}

impl ExecutorInfo {
    /// "id at host:port (grpc G, N slots, last heartbeat 3 s ago)".
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if let Some(g) = self.grpc_port {
            parts.push(format!("grpc port {g}"));
        }
        if let Some(s) = self.slots {
            parts.push(format!("{s} task slots"));
        }
        parts.push(format!("last heartbeat {}", self.heartbeat_age()));
        format!(
            "{} at {}:{} ({})",
            self.id,
            self.host,
            self.port,
            parts.join(", ")
        )
    }

    /// How long ago the last heartbeat came: "3 s ago", or "never".
    pub fn heartbeat_age(&self) -> String {
        match self.last_seen_ms {
            None => "never".into(),
            Some(ms) => {
                let secs = now_ms().saturating_sub(ms) / 1000;
                format!("{secs} s ago")
            }
        }
    }
}

/// A job the scheduler knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: String,
    pub name: String,
    /// Queued, Running, Completed or Failed.
    pub status: String,
    pub stages: usize,
    pub stages_done: usize,
    /// Tasks done and tasks in all over the stages planned so far (a stock Ballista
    /// scheduler does not say).
    pub tasks: Option<(usize, usize)>,
}

impl JobInfo {
    pub fn is_active(&self) -> bool {
        matches!(self.status.as_str(), "Queued" | "Running")
    }

    /// "1 of 2 stages, 5 of 8 tasks done".
    pub fn progress(&self) -> String {
        match self.tasks {
            Some((done, all)) => format!(
                "{} of {} stages, {done} of {all} tasks done",
                self.stages_done, self.stages
            ),
            None => format!("{} of {} stages done", self.stages_done, self.stages),
        }
    }
}

/// What `custvalue cluster status` shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterStatus {
    /// Live executors, as the scheduler counts them.
    pub live_executors: Option<usize>,
    /// The executors registered, when the scheduler lists them.
    pub executors: Option<Vec<ExecutorInfo>>,
    /// Every job the scheduler remembers, when it lists them.
    pub jobs: Option<Vec<JobInfo>>,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Why the scheduler could not be asked.
#[derive(Debug)]
pub struct Unreachable(pub String);

/// One HTTP/1.1 GET; the status code and the body. Each step is bounded by `limit`.
async fn get(
    host: &str,
    port: u16,
    path: &str,
    limit: Duration,
) -> Result<(u16, String), Unreachable> {
    let fail = |what: &str, e: &dyn std::fmt::Display| Unreachable(format!("{what}: {e}"));
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| fail("cannot connect", &e))?;
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAccept: */*\r\nConnection: close\r\n\r\n"
        );
        stream
            .write_all(request.as_bytes())
            .await
            .map_err(|e| fail("cannot send a request", &e))?;
        let mut raw = Vec::new();
        stream
            .read_to_end(&mut raw)
            .await
            .map_err(|e| fail("no answer", &e))?;
        parse_response(&raw).ok_or_else(|| {
            Unreachable("the answer is not HTTP (is this a Ballista scheduler's port?)".into())
        })
    };
    tokio::time::timeout(limit, exchange)
        .await
        .unwrap_or_else(|_| {
            Err(Unreachable(format!(
                "no answer within {} s",
                limit.as_secs()
            )))
        })
}

/// The status code and body of an HTTP/1.1 response (with a length, chunked, or read
/// to the end).
fn parse_response(raw: &[u8]) -> Option<(u16, String)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()?
        .strip_prefix("HTTP/1.")?
        .get(2..5)?
        .parse()
        .ok()?;
    let chunked = lines.any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    let mut body = &raw[end + 4..];
    let text = if chunked {
        let mut out = Vec::new();
        loop {
            let line_end = body.windows(2).position(|w| w == b"\r\n")?;
            let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
            let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
            body = &body[line_end + 2..];
            if size == 0 {
                break;
            }
            out.extend_from_slice(body.get(..size)?);
            body = body.get(size + 2..)?;
        }
        out
    } else {
        body.to_vec()
    };
    Some((status, String::from_utf8_lossy(&text).into_owned()))
}

/// The scheduler at `host:port`, asked over HTTP.
#[derive(Debug, Clone)]
pub struct Scheduler {
    pub host: String,
    pub port: u16,
    /// Bound on each request.
    pub limit: Duration,
}

impl std::fmt::Display for Scheduler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl Scheduler {
    pub fn new(host: impl Into<String>, port: u16) -> Scheduler {
        Scheduler {
            host: host.into(),
            port,
            limit: Duration::from_secs(10),
        }
    }

    /// The scheduler of a `df://host:port` address (already checked by
    /// `engine::SchedulerAddress`).
    pub fn from_url(url: &str) -> Option<Scheduler> {
        let rest = url.strip_prefix("df://").unwrap_or(url);
        let (host, port) = rest.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        Some(Scheduler::new(host, port.parse().ok()?))
    }

    async fn get(&self, path: &str) -> Result<(u16, String), Unreachable> {
        get(&self.host, self.port, path, self.limit).await
    }

    /// Whether a Ballista scheduler answers here (`/healthz`).
    pub async fn healthy(&self) -> Result<(), Unreachable> {
        match self.get("/healthz").await? {
            (200, _) => Ok(()),
            (code, _) => Err(Unreachable(format!(
                "it answers HTTP {code} to a health check: is this a Ballista scheduler's port?"
            ))),
        }
    }

    /// The number of live executors (`/readyz`); `None` when the scheduler does not say.
    pub async fn live_executors(&self) -> Result<Option<usize>, Unreachable> {
        let (_, body) = self.get("/readyz").await?;
        Ok(parse_readyz(&body))
    }

    /// The executors registered; `None` when the scheduler does not list them.
    pub async fn executors(&self) -> Result<Option<Vec<ExecutorInfo>>, Unreachable> {
        let (code, body) = self.get("/api/executors").await?;
        if code != 200 {
            return Ok(None);
        }
        let Ok(Value::Array(list)) = serde_json::from_str::<Value>(&body) else {
            return Ok(None);
        };
        Ok(Some(list.iter().filter_map(executor_from_json).collect()))
    }

    /// The jobs the scheduler remembers; `None` when it does not list them.
    pub async fn jobs(&self) -> Result<Option<Vec<JobInfo>>, Unreachable> {
        let (code, body) = self.get("/api/jobs").await?;
        if code != 200 {
            return Ok(None);
        }
        let Ok(Value::Array(list)) = serde_json::from_str::<Value>(&body) else {
            return Ok(None);
        };
        Ok(Some(list.iter().filter_map(job_from_json).collect()))
    }

    /// Executors, their count and the jobs, asked together.
    pub async fn status(&self) -> Result<ClusterStatus, Unreachable> {
        self.healthy().await?;
        Ok(ClusterStatus {
            live_executors: self.live_executors().await?,
            executors: self.executors().await?,
            jobs: self.jobs().await?,
        })
    }

    /// The executors in a sentence: each described, or their count.
    pub async fn executors_sentence(&self) -> String {
        match (self.executors().await, self.live_executors().await) {
            (Ok(Some(list)), _) if list.is_empty() => "none".into(),
            (Ok(Some(list)), _) => list
                .iter()
                .map(ExecutorInfo::describe)
                .collect::<Vec<_>>()
                .join("; "),
            (_, Ok(Some(n))) => format!("{n} (this scheduler does not list them)"),
            _ => "unknown (the scheduler does not answer)".into(),
        }
    }
}

/// Asks the scheduler at `host:port` for its executors and jobs; a scheduler that does
/// not answer is a cluster failure (exit code 3).
pub fn ask(host: &str, port: u16) -> crate::error::Result<ClusterStatus> {
    use crate::error::Error;
    let scheduler = Scheduler::new(host, port);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Cluster(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(scheduler.status()).map_err(|why| {
        Error::Cluster(format!(
            "the Ballista scheduler at {scheduler} cannot be reached ({}): is a scheduler \
             running there (`custvalue cluster scheduler --port {port}`)?",
            why.0
        ))
    })
}

/// "ready: 2 executors registered" or "not ready: 0/1 executors registered".
fn parse_readyz(body: &str) -> Option<usize> {
    let count = body.trim().rsplit(':').next()?.split_whitespace().next()?;
    count.split('/').next()?.parse().ok()
}

fn executor_from_json(v: &Value) -> Option<ExecutorInfo> {
    let num = |key: &str| v.get(key).and_then(Value::as_u64);
    Some(ExecutorInfo {
        id: v.get("id")?.as_str()?.to_string(),
        host: v.get("host")?.as_str()?.to_string(),
        port: u16::try_from(num("port")?).ok()?,
        grpc_port: num("grpc_port").and_then(|p| u16::try_from(p).ok()),
        slots: v
            .get("specification")
            .and_then(|s| s.get("vcores"))
            .and_then(Value::as_u64)
            .and_then(|n| u32::try_from(n).ok()),
        last_seen_ms: num("last_seen"),
    })
}

fn job_from_json(v: &Value) -> Option<JobInfo> {
    let num = |key: &str| v.get(key).and_then(Value::as_u64).map(|n| n as usize);
    let tasks = match (num("tasks_done"), num("tasks")) {
        (Some(d), Some(a)) => Some((d, a)),
        _ => None,
    };
    Some(JobInfo {
        id: v.get("job_id")?.as_str()?.to_string(),
        name: v
            .get("job_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        status: v.get("status")?.as_str()?.to_string(),
        stages: num("num_stages").unwrap_or(0),
        stages_done: num("completed_stages").unwrap_or(0),
        tasks,
    })
}

// ---------------------------------------------------------------------------------------
// The server side: the same API from a scheduler's state.

type State = Arc<SchedulerState<LogicalPlanNode, PhysicalPlanNode>>;

/// `/healthz`, `/readyz`, `/api/executors` and `/api/jobs` of a scheduler's state;
/// `executor_timeout` is how old a heartbeat may be for the executor to count as live.
pub(crate) fn routes(state: State, executor_timeout: Duration) -> axum::Router {
    use axum::http::StatusCode;
    use axum::routing::get;
    let live = state.clone();
    let listed = state.clone();
    axum::Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route(
            "/readyz",
            get(move || {
                let state = live.clone();
                async move {
                    let n = executors_json(&state)
                        .await
                        .iter()
                        .filter(|e| {
                            e.get("last_seen")
                                .and_then(Value::as_u64)
                                .is_some_and(|ms| {
                                    now_ms().saturating_sub(ms)
                                        <= executor_timeout.as_millis() as u64
                                })
                        })
                        .count();
                    if n >= 1 {
                        (StatusCode::OK, format!("ready: {n} executors registered\n"))
                    } else {
                        (
                            StatusCode::SERVICE_UNAVAILABLE,
                            format!("not ready: {n}/1 executors registered\n"),
                        )
                    }
                }
            }),
        )
        .route(
            "/api/executors",
            get(move || {
                let state = listed.clone();
                async move { json_response(Value::Array(executors_json(&state).await)) }
            }),
        )
        .route(
            "/api/jobs",
            get(move || {
                let state = state.clone();
                async move {
                    match jobs_json(&state).await {
                        Ok(jobs) => json_response(Value::Array(jobs)),
                        Err(e) => (
                            StatusCode::INTERNAL_SERVER_ERROR,
                            [(axum::http::header::CONTENT_TYPE, "text/plain")],
                            e,
                        ),
                    }
                }
            }),
        )
}

fn json_response(
    v: Value,
) -> (
    axum::http::StatusCode,
    [(axum::http::HeaderName, &'static str); 1],
    String,
) {
    (
        axum::http::StatusCode::OK,
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        v.to_string(),
    )
}

async fn executors_json(state: &State) -> Vec<Value> {
    let mut list: Vec<Value> = state
        .executor_manager
        .get_executors_state()
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|(meta, heartbeat, _)| {
            json!({
                "id": meta.id,
                "host": meta.host,
                "port": meta.port,
                "grpc_port": meta.grpc_port,
                "last_seen": heartbeat.map(|d| d.as_millis() as u64),
                "specification": { "vcores": meta.specification.vcores },
            })
        })
        .collect();
    list.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    list
}

async fn jobs_json(state: &State) -> Result<Vec<Value>, String> {
    use ballista_core::serde::protobuf::job_status::Status;
    let running = state.task_manager.get_running_job_cache();
    let mut jobs = Vec::new();
    let overviews = state
        .task_manager
        .get_all_jobs()
        .await
        .map_err(|e| e.to_string())?;
    for job in overviews {
        let status = match &job.status.status {
            None | Some(Status::Queued(_)) => "Queued",
            Some(Status::Running(_)) => "Running",
            Some(Status::Successful(_)) => "Completed",
            Some(Status::Failed(_)) => "Failed",
        };
        let mut v = json!({
            "job_id": job.job_id.to_string(),
            "job_name": job.job_name,
            "status": status,
            "num_stages": job.num_stages,
            "completed_stages": job.completed_stages,
            "start_time": job.start_time,
            "end_time": job.end_time,
        });
        if let Some(cached) = running.get(&job.job_id) {
            let graph = cached.execution_graph.read().await;
            let (mut done, mut all) = (0, 0);
            for stage in graph.stages().values() {
                let (d, a) = match stage {
                    // One task per input partition, as when the stage is resolved.
                    ExecutionStage::UnResolved(s) => {
                        let input = s.plan.children().first().map(|c| (*c).clone());
                        let plan = input.unwrap_or_else(|| s.plan.clone());
                        (0, plan.output_partitioning().partition_count())
                    }
                    ExecutionStage::Resolved(s) => (0, s.partitions),
                    ExecutionStage::Running(s) => (s.successful_tasks(), s.partitions),
                    ExecutionStage::Successful(s) => (s.partitions, s.partitions),
                    ExecutionStage::Failed(s) => (s.successful_tasks(), s.partitions),
                };
                done += d;
                all += a;
            }
            v["tasks_done"] = json!(done);
            v["tasks"] = json!(all);
        }
        jobs.push(v);
    }
    jobs.sort_by(|a, b| a["job_id"].as_str().cmp(&b["job_id"].as_str()));
    Ok(jobs)
}

/// Serves a scheduler's gRPC and the status API on one listener until the future is
/// dropped.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    grpc: axum::Router,
    state: State,
    executor_timeout: Duration,
) -> std::io::Result<()> {
    let app = grpc.merge(routes(state, executor_timeout));
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responses_parse_with_a_length_or_in_chunks() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok";
        assert_eq!(parse_response(plain), Some((200, "ok".into())));
        let chunked = b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n\
                        5\r\nnot r\r\n6\r\neady: \r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((503, "not ready: ".into())));
        assert_eq!(parse_response(b"\x00\x00\x12\x04"), None);
    }

    #[test]
    fn readyz_gives_the_live_executors() {
        assert_eq!(parse_readyz("ready: 2 executors registered\n"), Some(2));
        assert_eq!(
            parse_readyz("not ready: 0/1 executors registered\n"),
            Some(0)
        );
        assert_eq!(parse_readyz("ok"), None);
    }

    #[test]
    fn stock_ballista_json_reads_without_our_additions() {
        let executors = serde_json::from_str::<Value>(
            r#"[{"id":"e1","host":"10.0.0.5","port":50051,"last_seen":1700000000000,
                "specification":{"vcores":8},"metrics":[],"os_info":{}}]"#,
        )
        .unwrap();
        let e = executor_from_json(&executors[0]).unwrap();
        assert_eq!((e.port, e.grpc_port, e.slots), (50051, None, Some(8)));
        let job = serde_json::from_str::<Value>(
            r#"{"job_id":"j1","job_name":"x","job_status":"Running","status":"Running",
                "num_stages":3,"completed_stages":1,"percent_complete":33,
                "start_time":1,"end_time":0}"#,
        )
        .unwrap();
        let j = job_from_json(&job).unwrap();
        assert!(j.is_active());
        assert_eq!(j.progress(), "1 of 3 stages done");
    }
}
