//! The chaos mode: `cargo bench --bench chaos` (`-- --scale N`, default 5; `--only NAME`).
//!
//! The fault tests of the suite, run longer: the very same code (`tests/api/faults*.rs`,
//! `overload.rs`, with the invariant checks of `invariants.rs`), each with `scale` times
//! the stock, the clients' sale and (for the restart) the outage; the suite runs them at
//! scale 1. In order:
//! - `kill_9`: one of two nodes killed with SIGKILL mid-sale; the survivor sells on, the
//!   stranded stock returns when its lease expires, the campaign sells out exactly;
//! - `postgres_restart`: a private PostgreSQL cluster stopped and started mid-sale
//!   (down 2 s × scale): clean 503s, service back within 5 s, nothing stranded;
//! - `freeze`: a node frozen with SIGSTOP past its lease expiry, then SIGCONT: it never
//!   issues from the reaped lease;
//! - `partition`: the node cut from PostgreSQL by a TCP proxy for 10 s, then healed;
//! - `overload`: a node driven by 5× the claims it can hold, for 4 s × scale.
//!
//! Each ends with the invariants (issued ≤ limit, every acknowledged claim in the
//! database, no coupon over its uses, per-consumer limits, stats = database). A broken
//! promise panics inside the fault; the run catches it, goes on with the next fault,
//! prints a markdown table and exits 1. Needs what the suite needs: PostgreSQL at
//! `$DATABASE_URL` (else 127.0.0.1:5432) and the PostgreSQL server binaries.

#![allow(dead_code, unused_imports)]

#[path = "../tests/api/faults.rs"]
mod faults;
#[path = "../tests/api/faults_network.rs"]
mod faults_network;
#[path = "../tests/api/faults_nodes.rs"]
mod faults_nodes;
#[path = "../tests/api/helpers/mod.rs"]
mod helpers;
#[path = "../tests/api/invariants.rs"]
mod invariants;
#[path = "../tests/api/overload.rs"]
mod overload;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use futures_util::FutureExt;

const HELP: &str = "cargo bench --bench chaos [-- [--scale N] [--only NAME]]";

type Fault = Pin<Box<dyn Future<Output = String>>>;

fn faults(scale: u32) -> Vec<(&'static str, &'static str, Fault)> {
    vec![
        (
            "kill_9",
            "`kill -9` of one of two nodes mid-sale",
            Box::pin(faults_nodes::kill_9(scale)),
        ),
        (
            "postgres_restart",
            "PostgreSQL restarted mid-sale",
            Box::pin(faults::postgres_restart(scale)),
        ),
        (
            "freeze",
            "SIGSTOP past the lease expiry, then SIGCONT",
            Box::pin(faults_nodes::freeze(scale)),
        ),
        (
            "partition",
            "node ↔ PostgreSQL partition, healed after 10 s",
            Box::pin(faults_network::partition(scale)),
        ),
        (
            "overload",
            "overload at 5× capacity",
            Box::pin(async move {
                let db = helpers::fresh_database().await;
                let app = helpers::spawn_app_on(db, helpers::test_settings).await;
                let run = overload::overload(&app, Duration::from_secs(4) * scale).await;
                run.summary()
            }),
        ),
    ]
}

fn panic_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "a panic without a message".into())
}

fn main() -> ExitCode {
    let (mut scale, mut only) = (5u32, None::<String>);
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--scale" => match args.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0) {
                Some(n) => scale = n,
                None => return usage(),
            },
            "--only" => only = args.next(),
            // cargo bench passes this to every bench binary.
            "--bench" => {}
            _ => return usage(),
        }
    }
    // The nodes log every 503 of a fault as an error: the table is what this run shows.
    if std::env::var_os("TEST_LOG").is_none() {
        std::env::set_var("TEST_LOG", "off");
    }
    let started = Instant::now();
    let rows = actix_web::rt::System::new().block_on(async move {
        let mut rows = Vec::new();
        for (key, what, fault) in faults(scale) {
            if only.as_deref().is_some_and(|o| o != key) {
                continue;
            }
            println!("… {what} (scale {scale})");
            let began = Instant::now();
            let outcome = AssertUnwindSafe(fault).catch_unwind().await;
            let took = began.elapsed();
            let (ok, detail) = match outcome {
                Ok(summary) => (true, summary),
                Err(payload) => (false, panic_text(payload.as_ref())),
            };
            println!(
                "    {} in {:.1} s: {detail}",
                if ok { "held" } else { "BROKEN" },
                took.as_secs_f64()
            );
            rows.push((what, ok, took, detail));
        }
        rows
    });
    println!(
        "\nChaos run, scale {scale}, {:.0} s in all:\n\n| fault | invariants | took | what happened |\n|---|---|---|---|",
        started.elapsed().as_secs_f64()
    );
    for (what, ok, took, detail) in &rows {
        let detail = detail.replace('|', "\\|").replace('\n', " ");
        let verdict = if *ok { "held" } else { "**BROKEN**" };
        println!(
            "| {what} | {verdict} | {:.1} s | {detail} |",
            took.as_secs_f64()
        );
    }
    if rows.iter().all(|(_, ok, _, _)| *ok) {
        println!("\nall invariants held");
        ExitCode::SUCCESS
    } else {
        eprintln!("\n!!! CHAOS RUN FAILED: a fault broke a promise (see the table)");
        ExitCode::FAILURE
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: {HELP}");
    ExitCode::from(2)
}
