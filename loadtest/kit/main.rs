//! The load-test kit: `cargo bench --bench kit` (`-- --quick` for a run under 2 minutes).
//!
//! One run, against a fresh database (on `$DATABASE_URL`'s server, else 127.0.0.1:5432,
//! else a private cluster in a temp directory):
//! 1. starts ecoupon's release binary as a separate process (`serve --no-demo`, logs to a
//!    file), makes a merchant with `ecoupon tenant create --json`;
//! 2. measures the ceiling (`GET /livez`, once more later in the run: ratios use the better
//!    of the two) and the naive row-lock baseline (`loadtest/baselines.rs`, 16 clients);
//! 3. durable claims/s with p50/p90/p99/p99.9 at 50, 200 and 1,000 connections (one hot
//!    campaign, a new consumer per request), sold-out answers, authenticated reads, and
//!    claims spread over 1,000 campaigns: all with wrk and the Lua scripts beside this file;
//! 4. the flash-sale (phones through the consumer pages) and till (JSON API) scenarios with
//!    a reqwest client in this process;
//! 5. the server's memory with 100,000 idle campaigns (10,000 with `--quick`);
//! 6. after each claim phase, the invariants in SQL (`checks.rs`); a failure is printed
//!    loudly and the exit code is 1.
//!
//! Prints a markdown table and issue 11's targets, and writes the same as JSON
//! (`--json PATH`, default `<target>/loadtest/kit-<time>.json`). For each phase it reports
//! the CPU cores used by ecoupon, by PostgreSQL (backends of the run's database and the
//! server's shared helpers) and by the load generator (wrk, or this process for the
//! scenarios), and what the rest of the machine used, so the limiting resource is plain.
//! Options: `--quick`, `--seconds N` (per phase), `--json PATH`, `--keep` (keep the
//! database, scratch directory and server log), `--only KEY,KEY` (only those phases, by
//! the keys the JSON uses: e.g. `--only claims_1000_campaigns,idle_campaigns`).

#[path = "../baselines.rs"]
mod baselines;

mod api;
mod checks;
mod memory;
mod phases;
mod procstat;
mod report;
mod scenarios;
mod server;
mod wrk;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context};
use serde_json::json;

use phases::Kit;
use report::Row;

struct Options {
    quick: bool,
    seconds: Option<f64>,
    json: Option<PathBuf>,
    keep: bool,
    /// Phase keys to run; None runs them all.
    only: Option<Vec<String>>,
}

const HELP: &str =
    "cargo bench --bench kit [-- [--quick] [--seconds N] [--json PATH] [--keep] [--only KEY,KEY]]";

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        quick: false,
        seconds: None,
        json: None,
        keep: false,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => o.quick = true,
            "--keep" => o.keep = true,
            "--seconds" => {
                o.seconds = Some(args.next().context("--seconds N")?.parse()?);
            }
            "--json" => o.json = Some(args.next().context("--json PATH")?.into()),
            "--only" => {
                let keys = args.next().context("--only KEY,KEY")?;
                o.only = Some(keys.split(',').map(str::to_owned).collect());
            }
            // cargo bench passes this to every bench binary.
            "--bench" => {}
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?}; usage: {HELP}"),
        }
    }
    Ok(o)
}

fn main() -> ExitCode {
    let opts = match options() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("{e:#}");
            return ExitCode::from(2);
        }
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    // Nothing may hang the run: every phase has its own limit, and so has the whole.
    let whole = Duration::from_secs(if opts.quick { 900 } else { 3600 });
    match runtime.block_on(async { tokio::time::timeout(whole, run(opts)).await }) {
        Ok(Ok(true)) => ExitCode::SUCCESS,
        Ok(Ok(false)) => ExitCode::FAILURE,
        Ok(Err(e)) => {
            eprintln!("\nLOAD TEST FAILED: {e:#}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!(
                "\nLOAD TEST FAILED: the run did not finish within {} s",
                whole.as_secs()
            );
            ExitCode::FAILURE
        }
    }
}

/// `<target>/loadtest`, beside the binaries cargo built for this run.
fn output_dir() -> PathBuf {
    let bin = PathBuf::from(server::BINARY);
    bin.parent()
        .and_then(|profile| profile.parent())
        .map_or_else(std::env::temp_dir, |target| target.join("loadtest"))
}

/// Runs a phase; a phase that fails becomes a row saying why, and the run goes on. A phase
/// left out by `--only` is not run (nor awaited).
async fn phase(
    rows: &mut Vec<Row>,
    key: &str,
    name: &str,
    run: impl Future<Output = anyhow::Result<Row>>,
) {
    let only = ONLY.get().and_then(Option::as_ref);
    if only.is_some_and(|keys| !keys.iter().any(|k| k == key)) {
        return;
    }
    println!("… {name}");
    let started = std::time::Instant::now();
    let row = run.await.unwrap_or_else(|e| {
        let mut row = Row::new(key, name, None);
        row.error = Some(format!("{e:#}"));
        row
    });
    if let Some(e) = &row.error {
        eprintln!("!!! {name}: FAILED: {e}");
    }
    if let Some(c) = row.check.as_ref().filter(|c| !c.ok) {
        eprintln!("!!! {name}: INVARIANT VIOLATED: {}", c.detail);
    }
    let rate = row.rate.map_or("no rate".into(), |r| {
        format!("{} answers/s", report::thousands(r))
    });
    println!("    {rate} (took {:.1} s)", started.elapsed().as_secs_f64());
    rows.push(row);
}

/// `--only`, for [`phase`].
static ONLY: std::sync::OnceLock<Option<Vec<String>>> = std::sync::OnceLock::new();

async fn run(opts: Options) -> anyhow::Result<bool> {
    let _ = ONLY.set(opts.only.clone());
    let started = std::time::Instant::now();
    let stamp = chrono::Utc::now().format("%Y%m%d-%H%M%S").to_string();
    let out_dir = output_dir();
    std::fs::create_dir_all(&out_dir)?;
    let scratch = std::env::temp_dir().join(format!("ecoupon-kit-{stamp}-{}", std::process::id()));
    std::fs::create_dir_all(&scratch)?;
    let db = server::Database::create(&scratch).await?;
    let outcome = measure(&opts, &db, &scratch, &out_dir, &stamp).await;
    if opts.keep {
        println!("kept: database {} and {}", db.describe(), scratch.display());
    } else {
        let dropped = db.drop_all().await;
        let _ = std::fs::remove_dir_all(&scratch);
        dropped.context("dropping the run's database")?;
    }
    println!("(the run took {:.0} s)", started.elapsed().as_secs_f64());
    outcome
}

/// Everything between creating the database and dropping it.
async fn measure(
    opts: &Options,
    db: &server::Database,
    scratch: &std::path::Path,
    out_dir: &std::path::Path,
    stamp: &str,
) -> anyhow::Result<bool> {
    let json_path = opts
        .json
        .clone()
        .unwrap_or_else(|| out_dir.join(format!("kit-{stamp}.json")));
    let seconds = opts.seconds.unwrap_or(if opts.quick { 3.0 } else { 10.0 });
    let idle = if opts.quick { 10_000 } else { 100_000 };
    let machine = procstat::machine();
    println!(
        "ecoupon load-test kit ({}): {seconds} s per phase, {} idle campaigns{}\n\
         machine: {} × {}, load average {}",
        if opts.quick { "quick" } else { "full" },
        report::thousands(idle as f64),
        if opts.quick {
            " (not 100,000: --quick)"
        } else {
            ""
        },
        machine["nproc"],
        machine["cpu_model"].as_str().unwrap_or("?"),
        machine["load_average"].as_str().unwrap_or("?"),
    );
    let log = out_dir.join(format!("kit-{stamp}-ecoupon.log"));
    println!("database: {}\nserver log: {}", db.describe(), log.display());
    let key = server::create_tenant(db, scratch).await?;
    let mut srv = server::Server::start(db, scratch, log).await?;
    let kit = Kit {
        api: api::Api::new(&srv.base, &key)?,
        pg: std::sync::Arc::new(db.client().await?),
        pg_config: db.config.clone(),
        server_pid: srv.pid,
        log: srv.log.clone(),
        scripts: wrk::Scripts::write(scratch)?,
        scratch: scratch.to_path_buf(),
        seconds,
    };
    println!(
        "ecoupon {} (pid {}) at {}\n",
        server::BINARY,
        srv.pid,
        srv.base
    );

    let mut rows = Vec::new();
    let mut memory = json!(null);
    // Past this the phases stop, and what was measured is still reported and cleaned up.
    let limit = Duration::from_secs(if opts.quick { 300 } else { 1500 });
    let phases = async {
        phase(&mut rows, "livez", "GET /livez", phases::livez(&kit)).await;
        phase(
            &mut rows,
            "row_lock",
            "row-lock baseline",
            phases::row_lock(&kit),
        )
        .await;
        for conns in [50, 200, 1000] {
            let key = format!("claims_hot_{conns}");
            let name = format!("claims, one hot campaign, {conns} connections");
            phase(&mut rows, &key, &name, phases::claims_hot(&kit, conns)).await;
            ensure_alive(&mut srv)?;
        }
        phase(
            &mut rows,
            "claims_keyed_200",
            "claims with an Idempotency-Key, 200 connections",
            phases::claims_keyed(&kit),
        )
        .await;
        phase(
            &mut rows,
            "sold_out",
            "sold-out answers",
            phases::sold_out(&kit),
        )
        .await;
        phase(
            &mut rows,
            "read_tenant",
            "GET /api/v1/tenant",
            phases::read_tenant(&kit),
        )
        .await;
        phase(
            &mut rows,
            "read_campaign",
            "GET /api/v1/campaigns/{id}",
            phases::read_campaign(&kit),
        )
        .await;
        phase(
            &mut rows,
            "livez_again",
            "GET /livez again",
            phases::livez_again(&kit),
        )
        .await;
        phase(
            &mut rows,
            "claims_1000_campaigns",
            "1,000 campaigns at once",
            phases::many_campaigns(&kit),
        )
        .await;
        ensure_alive(&mut srv)?;
        phase(
            &mut rows,
            "flash_sale",
            "flash-sale scenario (phones)",
            phases::flash_sale(&kit),
        )
        .await;
        phase(
            &mut rows,
            "till",
            "till scenario (JSON API)",
            phases::till(&kit),
        )
        .await;
        ensure_alive(&mut srv)?;
        let settle = Duration::from_secs(if opts.quick { 2 } else { 5 });
        let name = format!("{} idle campaigns: memory", report::thousands(idle as f64));
        let mut measured = None;
        phase(&mut rows, "idle_campaigns", &name, async {
            let (row, m) = memory::idle_campaigns(&kit, idle, settle).await?;
            measured = Some(m);
            Ok(row)
        })
        .await;
        if let Some(m) = measured {
            memory = m;
        }
        ensure_alive(&mut srv)
    };
    let outcome = match tokio::time::timeout(limit, phases).await {
        Ok(done) => done,
        Err(_) => Err(anyhow::anyhow!(
            "the phases did not finish within {} s; the table has those that did",
            limit.as_secs()
        )),
    };

    let targets = report::targets(&rows, &memory);
    let table = report::table(&rows);
    println!("\n{table}");
    if !memory.is_null() {
        println!("{}\n", memory::describe(&memory));
    }
    let capacity = report::capacity(&rows);
    if !capacity.is_null() {
        println!("{}\n", report::describe_capacity(&capacity));
    }
    println!("{}", report::targets_table(&targets));
    let result = json!({
        "date": chrono::Utc::now().to_rfc3339(),
        "command": format!("cargo bench --bench kit{}", if opts.quick { " -- --quick" } else { "" }),
        "quick": opts.quick,
        "phase_seconds": seconds,
        "machine": machine,
        "load_average_after": procstat::load_average(),
        "database": db.describe(),
        "server_log": srv.log,
        "binary": server::BINARY,
        "server_settings": server::SETTINGS,
        "rows": report::rows_json(&rows),
        "memory": memory,
        "capacity": capacity,
        "targets": targets.iter().map(|(what, measured, wanted, met)| json!({
            "target": what, "measured": measured, "wanted": wanted, "met": met,
        })).collect::<Vec<_>>(),
        "markdown": table,
    });
    std::fs::write(&json_path, serde_json::to_string_pretty(&result)?)
        .with_context(|| format!("writing {}", json_path.display()))?;
    println!("JSON: {}", json_path.display());

    let stopped = srv.stop().await;
    outcome?;
    stopped?;
    let failed: Vec<&Row> = rows.iter().filter(|r| r.failed()).collect();
    if !failed.is_empty() {
        eprintln!(
            "\n!!! LOAD TEST FAILED: {} phase(s) failed or broke an invariant:",
            failed.len()
        );
        for r in failed {
            let why = r
                .error
                .clone()
                .or_else(|| r.check.as_ref().map(|c| c.detail.clone()));
            eprintln!("!!!   {}: {}", r.key, why.unwrap_or_default());
        }
        return Ok(false);
    }
    println!("all invariants held");
    Ok(true)
}

/// A server that died ends the run, with the end of its log.
fn ensure_alive(srv: &mut server::Server) -> anyhow::Result<()> {
    if !srv.alive() {
        bail!(
            "ecoupon is no longer running; the end of its log ({}):\n{}",
            srv.log.display(),
            srv.log_tail(20)
        );
    }
    Ok(())
}
