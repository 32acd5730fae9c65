//! Runs wrk (Debian `wrk`) with the kit's Lua scripts and reads the one JSON line its
//! `done()` prints.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde::Deserialize;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::Command;

const COMMON: &str = include_str!("common.lua");
const CLAIM: &str = include_str!("claim.lua");
const GET: &str = include_str!("get.lua");

/// After a claim phase's deadline, how long wrk keeps running so the claims in flight are
/// answered (below actix-web's 5 s limit for a request head, which would answer the
/// parked connections with 408).
pub const DRAIN: Duration = Duration::from_secs(3);

/// What the Lua `done()` reports.
#[derive(Debug, Clone, Deserialize)]
pub struct WrkResult {
    /// Answers, the parked connections' 408s included (see `parked_408`).
    pub requests: u64,
    /// actix-web's 408 to connections parked for more than 5 s ("once" phases only).
    #[serde(default)]
    pub parked_408: u64,
    pub duration_us: u64,
    /// First claim sent to last answer (claim scripts only; 0 otherwise).
    pub window_s: f64,
    pub errors: WrkErrors,
    pub latency_us: Latency,
    /// Answers by HTTP status (claim scripts only).
    pub status: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct WrkErrors {
    pub connect: u64,
    pub read: u64,
    pub write: u64,
    /// Answers with a status of 400 or more.
    pub status: u64,
    pub timeout: u64,
}

#[derive(Debug, Clone, Copy, Deserialize)]
pub struct Latency {
    pub p50: u64,
    pub p90: u64,
    pub p99: u64,
    pub p999: u64,
    pub max: u64,
    pub mean: f64,
}

impl WrkResult {
    /// Answers per second over the time that carried load.
    pub fn rate(&self) -> f64 {
        let secs = if self.window_s > 0.0 {
            self.window_s
        } else {
            self.duration_us as f64 / 1e6
        };
        self.answers() as f64 / secs.max(1e-9)
    }

    /// Answers to the phase's requests.
    pub fn answers(&self) -> u64 {
        self.requests.saturating_sub(self.parked_408)
    }

    pub fn count(&self, status: u16) -> u64 {
        self.status.get(&status.to_string()).copied().unwrap_or(0)
    }

    pub fn socket_errors(&self) -> u64 {
        self.errors.connect + self.errors.read + self.errors.write + self.errors.timeout
    }
}

/// The scripts, written once per run into the scratch directory.
pub struct Scripts {
    claim: PathBuf,
    get: PathBuf,
}

impl Scripts {
    pub fn write(dir: &Path) -> anyhow::Result<Scripts> {
        let claim = dir.join("kit-claim.lua");
        let get = dir.join("kit-get.lua");
        std::fs::write(&claim, format!("{COMMON}\n{CLAIM}"))?;
        std::fs::write(&get, format!("{COMMON}\n{GET}"))?;
        Ok(Scripts { claim, get })
    }
}

/// One wrk run.
pub struct Load<'a> {
    pub base: &'a str,
    pub connections: usize,
    pub seconds: f64,
}

/// wrk threads: one leaves the other core to the server; two only for 1,000 connections,
/// where one thread's event loop would queue the answers.
fn threads(connections: usize) -> usize {
    if connections >= 1000 {
        2
    } else {
        1
    }
}

impl Load<'_> {
    /// GETs `path` (static request; `headers` as `Name: value`) for the phase.
    pub async fn get(
        &self,
        scripts: &Scripts,
        path: &str,
        headers: &[String],
    ) -> anyhow::Result<WrkResult> {
        let mut args = self.common_args(self.seconds, &scripts.get);
        for h in headers {
            args.extend(["-H".to_string(), h.clone()]);
        }
        args.push(format!("{}{path}", self.base));
        run(args, self.seconds, None).await
    }

    /// Claims with a new consumer per request. `once`: every campaign in `ids` once, then
    /// stop (the phase's length is then only a limit); else for the phase, spread over
    /// `ids`. `tag` keeps consumers apart between phases.
    pub async fn claims(
        &self,
        scripts: &Scripts,
        key: &str,
        ids: &Path,
        once: bool,
        tag: &str,
        keyed: bool,
    ) -> anyhow::Result<WrkResult> {
        let t = threads(self.connections);
        let limit = self.seconds + DRAIN.as_secs_f64();
        let mut args = self.common_args(limit, &scripts.claim);
        args.push(self.base.to_string());
        args.push("--".into());
        args.extend([
            key.to_string(),
            ids.display().to_string(),
            format!("{}", self.seconds),
            t.to_string(),
            if once { "once" } else { "spread" }.to_string(),
            tag.to_string(),
            if keyed { "keyed" } else { "plain" }.to_string(),
        ]);
        run(args, limit, once.then_some(t)).await
    }

    fn common_args(&self, seconds: f64, script: &Path) -> Vec<String> {
        vec![
            format!("-t{}", threads(self.connections)),
            format!("-c{}", self.connections),
            format!("-d{}s", seconds.ceil() as u64),
            // Slow answers are measured, not dropped as timeouts.
            "--timeout".into(),
            "30s".into(),
            "-s".into(),
            script.display().to_string(),
        ]
    }
}

/// Runs wrk; a wrk that outlives its duration by a minute is killed and the phase fails.
/// `once_threads`: in "once" mode, wrk is interrupted when that many threads are done.
async fn run(
    args: Vec<String>,
    seconds: f64,
    once_threads: Option<usize>,
) -> anyhow::Result<WrkResult> {
    let mut child = Command::new("wrk")
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("running wrk (Debian package `wrk`; .ci/install-deps installs it)")?;
    let pid = child.id().context("wrk exited at once")?;
    let started = std::time::Instant::now();
    let mut stdout = BufReader::new(child.stdout.take().context("wrk's stdout")?).lines();
    let mut stderr = child.stderr.take().context("wrk's stderr")?;
    let limit = Duration::from_secs_f64(seconds.ceil() + 60.0);
    let read = async {
        let mut lines = Vec::new();
        let mut done = 0;
        while let Some(line) = stdout.next_line().await? {
            if let Some(n) = line.strip_prefix("KIT-PROGRESS ") {
                println!(
                    "    {n} campaigns answered ({:.0} s)",
                    started.elapsed().as_secs_f64()
                );
            } else if line == "KIT-THREAD-DONE" {
                done += 1;
                if Some(done) == once_threads {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGINT);
                }
            } else {
                lines.push(line);
            }
        }
        let mut errors = String::new();
        stderr.read_to_string(&mut errors).await?;
        let status = child.wait().await?;
        Ok::<_, anyhow::Error>((lines, errors, status))
    };
    let (lines, errors, status) =
        tokio::time::timeout(limit, read).await.with_context(|| {
            format!(
                "wrk hung: no result {} s after it started; killed",
                limit.as_secs()
            )
        })??;
    let Some(line) = lines.iter().find_map(|l| l.strip_prefix("KIT-JSON ")) else {
        bail!(
            "wrk gave no result ({status}): {}\n{}",
            errors.trim(),
            lines.join("\n")
        );
    };
    serde_json::from_str(line).with_context(|| format!("wrk's result line: {line}"))
}
