//! Who used the CPU during a phase, from /proc: ecoupon (a child process), PostgreSQL's
//! processes that serve the kit's database, the load generator (this process plus the
//! children it reaped during the phase, i.e. wrk) and the rest of the machine.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

/// Clock ticks per second of the times in /proc (USER_HZ).
fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// The fields of /proc/<pid>/stat after the command name (field 3 onwards).
fn stat_fields(pid: &str) -> Option<Vec<u64>> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &text[text.rfind(')')? + 2..];
    // Field 3 (state) is a letter; keep positions by mapping it to 0.
    Some(
        rest.split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect(),
    )
}

/// utime + stime (own) and cutime + cstime (reaped children), in ticks.
fn cpu_ticks(pid: &str) -> Option<(u64, u64)> {
    let f = stat_fields(pid)?;
    // Fields 14..17 of stat(5) are at 11..14 here (field 3 is index 0).
    Some((f.get(11)? + f.get(12)?, f.get(13)? + f.get(14)?))
}

/// Busy and total ticks of the whole machine, from the first line of /proc/stat.
fn machine_ticks() -> (u64, u64) {
    let text = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let cpu: Vec<u64> = text
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .map(|f| f.parse().unwrap_or(0))
        .collect();
    let total: u64 = cpu.iter().take(8).sum();
    // idle and iowait are not work.
    let idle = cpu.get(3).copied().unwrap_or(0) + cpu.get(4).copied().unwrap_or(0);
    (total.saturating_sub(idle), total)
}

/// A process's resident memory in bytes (VmRSS), or its peak (VmHWM).
pub fn memory_bytes(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// One look at PostgreSQL's processes doing the kit's work: backends of its database and
/// the server's shared helpers (WAL writer, checkpointer …, which have no database).
/// `(pid, what an active backend of the run's database waits for)`, the latter "CPU" when
/// it waits for nothing and None for idle backends and helpers.
async fn postgres_now(db: &tokio_postgres::Client) -> Vec<(u32, Option<String>)> {
    let sql = "SELECT pid, CASE WHEN datname IS NOT NULL AND state = 'active' \
                 THEN coalesce(wait_event_type || ':' || wait_event, 'CPU') END \
               FROM pg_stat_activity \
               WHERE (datname = current_database() OR datname IS NULL) AND pid <> pg_backend_pid()";
    match db.query(sql, &[]).await {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| Some((u32::try_from(r.get::<_, i32>(0)).ok()?, r.get(1))))
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// The run's database's commits and the server's WAL fsyncs so far (PostgreSQL 14+).
async fn postgres_counters(db: &tokio_postgres::Client) -> Option<(i64, i64)> {
    let sql =
        "SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()), \
                      (SELECT wal_sync FROM pg_stat_wal)";
    let row = db.query_one(sql, &[]).await.ok()?;
    Some((row.get(0), row.get(1)))
}

/// CPU used during a phase, in cores (CPU seconds per wall second), and what PostgreSQL
/// was doing.
#[derive(Debug, Clone, Default)]
pub struct Usage {
    pub wall_s: f64,
    pub ecoupon: f64,
    /// None when PostgreSQL's processes are not visible here (another host or namespace).
    pub postgres: Option<f64>,
    pub generator: f64,
    /// The whole machine's busy cores.
    pub machine: f64,
    /// Commits in the run's database per second (statistics may lag a second).
    pub commits_per_s: Option<f64>,
    /// WAL fsyncs per second, server-wide (other databases' too).
    pub wal_syncs_per_s: Option<f64>,
    /// What the run's database's active backends waited for, as shares of 200 ms samples
    /// (e.g. `IO:WalSync`, `Lock:transactionid`, `CPU`), largest first.
    pub waits: Vec<(String, f64)>,
    /// How many active-backend samples `waits` is made of.
    pub wait_samples: u64,
    /// Lines the server wrote to its log.
    pub log_lines: u64,
}

impl Usage {
    /// The same CPU and counts per second of `load_s`, the part of the metered time in
    /// which requests were in flight. A claim phase's wrk runs past its deadline so that
    /// the last claims are answered and counted (`wrk::DRAIN`), with its connections
    /// parked and the machine nearly idle; per second of the whole run, the cores and
    /// commits of an 8 s phase read about 8/11 of what they were under load, and claims
    /// per core (answers per second of load, divided by those cores) 11/8 too many.
    pub fn over_load(mut self, load_s: f64) -> Usage {
        if load_s > 0.0 && load_s < self.wall_s {
            let k = self.wall_s / load_s;
            self.ecoupon *= k;
            self.postgres = self.postgres.map(|c| c * k);
            self.generator *= k;
            self.machine *= k;
            self.commits_per_s = self.commits_per_s.map(|c| c * k);
            self.wal_syncs_per_s = self.wal_syncs_per_s.map(|c| c * k);
            self.wall_s = load_s;
        }
        self
    }

    /// Busy cores not accounted to ecoupon, PostgreSQL or the generator: other work on a
    /// shared machine.
    pub fn other(&self) -> f64 {
        (self.machine - self.ecoupon - self.postgres.unwrap_or(0.0) - self.generator).max(0.0)
    }

    /// The generator's part of the CPU that the measured processes used.
    pub fn generator_share(&self) -> f64 {
        let used = self.ecoupon + self.postgres.unwrap_or(0.0) + self.generator;
        if used > 0.0 {
            self.generator / used
        } else {
            0.0
        }
    }

    /// The two largest waits, e.g. "IO:WalSync 60 %, CPU 30 %".
    pub fn top_waits(&self) -> String {
        let top: Vec<String> = self
            .waits
            .iter()
            .take(2)
            .map(|(w, share)| format!("{w} {:.0} %", share * 100.0))
            .collect();
        // A handful of samples is a backend caught in passing, not what a phase waits for.
        if self.wait_samples < 5 {
            "mostly idle".into()
        } else {
            top.join(", ")
        }
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "wall_s": self.wall_s,
            "ecoupon_cores": self.ecoupon,
            "postgres_cores": self.postgres,
            "generator_cores": self.generator,
            "generator_share": self.generator_share(),
            "machine_busy_cores": self.machine,
            "other_cores": self.other(),
            "postgres_commits_per_s": self.commits_per_s,
            "wal_fsyncs_per_s": self.wal_syncs_per_s,
            "server_log_lines": self.log_lines,
            "postgres_wait_samples": self.wait_samples,
            "postgres_waits": self.waits.iter().map(|(w, s)| json!({"wait": w, "share": s})).collect::<Vec<_>>(),
        })
    }
}

/// What the sampler saw of PostgreSQL.
#[derive(Default)]
struct PgSamples {
    /// CPU ticks per process: (at the phase's start, or 0 for a process that started
    /// during it; latest seen).
    ticks: HashMap<u32, (u64, u64)>,
    /// Active backends of the run's database by what they waited for, summed over samples.
    waits: HashMap<String, u64>,
}

type Shared = Arc<Mutex<PgSamples>>;

async fn sample_postgres(db: &tokio_postgres::Client, seen: &Shared, baseline: bool) {
    let now = postgres_now(db).await;
    let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
    for (pid, wait) in now {
        if let Some((own, _)) = cpu_ticks(&pid.to_string()) {
            let entry = seen
                .ticks
                .entry(pid)
                .or_insert((if baseline { own } else { 0 }, own));
            entry.1 = own;
        }
        if let (Some(wait), false) = (wait, baseline) {
            *seen.waits.entry(wait).or_default() += 1;
        }
    }
}

/// A snapshot taken when a phase starts; [`Meter::finish`] turns it into [`Usage`].
/// PostgreSQL's processes are sampled every 200 ms meanwhile, so backends that come and
/// go within the phase (the baseline's clients) are counted too.
pub struct Meter {
    started: Instant,
    server_pid: u32,
    server: u64,
    generator: u64,
    postgres: Shared,
    counters: Option<(i64, i64)>,
    sampler: tokio::task::JoinHandle<()>,
    machine: u64,
    log: PathBuf,
    log_lines: u64,
}

/// Lines in a file so far.
fn lines(path: &Path) -> u64 {
    std::fs::read(path).map_or(0, |b| b.iter().filter(|&&c| c == b'\n').count() as u64)
}

impl Meter {
    pub async fn start(server_pid: u32, db: &Arc<tokio_postgres::Client>, log: &Path) -> Meter {
        let postgres = Shared::default();
        sample_postgres(db, &postgres, true).await;
        let counters = postgres_counters(db).await;
        let sampler = {
            let (db, postgres) = (db.clone(), postgres.clone());
            tokio::spawn(async move {
                loop {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    sample_postgres(&db, &postgres, false).await;
                }
            })
        };
        let (own, children) = cpu_ticks("self").unwrap_or_default();
        Meter {
            started: Instant::now(),
            server_pid,
            server: cpu_ticks(&server_pid.to_string()).map_or(0, |t| t.0),
            generator: own + children,
            postgres,
            counters,
            sampler,
            machine: machine_ticks().0,
            log: log.to_path_buf(),
            log_lines: lines(log),
        }
    }

    /// Call after the phase's load has stopped (and wrk has been reaped).
    pub async fn finish(self, db: &tokio_postgres::Client) -> Usage {
        let wall = self.started.elapsed().as_secs_f64().max(1e-9);
        let (own, children) = cpu_ticks("self").unwrap_or_default();
        let server = cpu_ticks(&self.server_pid.to_string()).map_or(self.server, |t| t.0);
        let machine = machine_ticks().0;
        self.sampler.abort();
        sample_postgres(db, &self.postgres, false).await;
        let counters = postgres_counters(db).await;
        let per_s = |d: i64| d as f64 / wall;
        let seen = self.postgres.lock().unwrap_or_else(|p| p.into_inner());
        let pg_ticks: u64 = seen
            .ticks
            .values()
            .map(|(first, last)| last.saturating_sub(*first))
            .sum();
        let samples: u64 = seen.waits.values().sum();
        let mut waits: Vec<(String, f64)> = seen
            .waits
            .iter()
            .map(|(w, n)| (w.clone(), *n as f64 / samples.max(1) as f64))
            .collect();
        waits.sort_by(|a, b| b.1.total_cmp(&a.1));
        let hz = ticks_per_second();
        let cores = |ticks: u64| ticks as f64 / hz / wall;
        Usage {
            wall_s: wall,
            ecoupon: cores(server.saturating_sub(self.server)),
            postgres: (!seen.ticks.is_empty()).then(|| cores(pg_ticks)),
            generator: cores((own + children).saturating_sub(self.generator)),
            machine: cores(machine.saturating_sub(self.machine)),
            commits_per_s: self.counters.zip(counters).map(|(a, b)| per_s(b.0 - a.0)),
            wal_syncs_per_s: self.counters.zip(counters).map(|(a, b)| per_s(b.1 - a.1)),
            waits,
            wait_samples: samples,
            log_lines: lines(&self.log).saturating_sub(self.log_lines),
        }
    }
}

/// The machine, for the report: cores, CPU model, load average now.
pub fn machine() -> serde_json::Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name")?.split_once(':'))
        .map_or("unknown".to_string(), |(_, m)| m.trim().to_string());
    json!({
        "nproc": std::thread::available_parallelism().map_or(0, |n| n.get()),
        "cpu_model": model,
        "load_average": load_average(),
        "memory_total_bytes": memory_total(),
    })
}

fn memory_total() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

/// The 1, 5 and 15-minute load averages: how busy the machine was before a run.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
