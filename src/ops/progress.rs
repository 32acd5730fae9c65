//! Progress of long CLI work: a bar on a terminal (indicatif), plain log lines otherwise
//! (a log collector wants lines, not carriage returns).

use std::fmt::Display;
use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

pub struct Progress {
    bar: Option<ProgressBar>,
    what: &'static str,
}

impl Progress {
    /// A bar when stderr is a terminal, log lines otherwise. `total` steps, if known.
    pub fn new(what: &'static str, total: Option<u64>) -> Progress {
        if !std::io::stderr().is_terminal() {
            return Progress::lines(what);
        }
        let bar = match total {
            Some(n) => ProgressBar::new(n).with_style(bar_style()),
            None => ProgressBar::new_spinner().with_style(
                ProgressStyle::with_template("{spinner} {prefix} {elapsed} {wide_msg}")
                    .expect("constant template"),
            ),
        };
        bar.set_prefix(what);
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        Progress {
            bar: Some(bar),
            what,
        }
    }

    /// Log lines only (background jobs inside `serve`).
    pub fn lines(what: &'static str) -> Progress {
        Progress { bar: None, what }
    }

    /// Once the number of steps is known, the spinner becomes a bar.
    pub fn set_total(&self, total: u64) {
        if let Some(bar) = &self.bar {
            bar.set_style(bar_style());
            bar.set_length(total);
        }
    }

    /// One step done.
    pub fn step(&self, message: impl Display) {
        match &self.bar {
            Some(bar) => {
                bar.set_message(message.to_string());
                bar.inc(1);
            }
            None => tracing::info!(task = self.what, "{message}"),
        }
    }

    /// A line that is not a step (a phase starting).
    pub fn note(&self, message: impl Display) {
        match &self.bar {
            Some(bar) => bar.set_message(message.to_string()),
            None => tracing::info!(task = self.what, "{message}"),
        }
    }
}

fn bar_style() -> ProgressStyle {
    ProgressStyle::with_template("{prefix} [{bar:30}] {pos}/{len} {elapsed} {wide_msg}")
        .expect("constant template")
        .progress_chars("=> ")
}

impl Drop for Progress {
    fn drop(&mut self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
