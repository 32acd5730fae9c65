//! Accessibility: axe-core (npm, pinned by `tests/axe/package-lock.json`) runs inside the
//! page the browser test is looking at, and any WCAG 2.0/2.1 A or AA violation fails the
//! test with what axe found.
//!
//! The script goes in through WebDriver's `execute`. The pages' CSP forbids inline script,
//! but Chromium runs WebDriver scripts through the DevTools protocol, which CSP does not
//! govern (checked: `axe_runs_under_the_pages_csp` in console_browser.rs).

use std::path::PathBuf;
use std::sync::OnceLock;

use fantoccini::Client;
use serde_json::{json, Value};

use crate::helpers::missing_dependency;

/// The rule sets the issue asks for: WCAG 2.0 and 2.1, levels A and AA.
const TAGS: [&str; 4] = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];

/// Runs axe on the whole document and hands back only what a failure message needs.
const RUN: &str = r#"
const [tags, done] = arguments;
axe.run(document, { runOnly: { type: 'tag', values: tags }, resultTypes: ['violations'] })
  .then(r => done({ ok: true, violations: r.violations.map(v => ({
      id: v.id, impact: v.impact, help: v.help,
      nodes: v.nodes.map(n => ({ target: n.target.map(String), summary: n.failureSummary || '' })),
  })) }))
  .catch(e => done({ ok: false, error: String(e && e.stack || e) }));
"#;

fn axe_source() -> &'static str {
    static SOURCE: OnceLock<String> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("tests/axe/node_modules/axe-core/axe.min.js");
        match std::fs::read_to_string(&path) {
            Ok(source) => source,
            Err(e) => missing_dependency(&format!(
                "axe-core is not installed ({}: {e})",
                path.display()
            )),
        }
    })
}

/// Fails the test if the page now in `client` has any WCAG 2 A/AA violation; `page_name`
/// says which page in the message.
pub async fn assert_accessible(client: &Client, page_name: &str) {
    if let Some(report) = accessibility_report(client, page_name).await {
        panic!("{report}");
    }
}

/// What axe finds wrong with the page now in `client`, as a message naming the page, its
/// URL and each violation with the elements it was found on; None when nothing is wrong.
/// For a walk through many pages that reports them all at the end.
pub async fn accessibility_report(client: &Client, page_name: &str) -> Option<String> {
    let violations = violations(client, page_name).await;
    if violations.is_empty() {
        return None;
    }
    let url = client
        .current_url()
        .await
        .map(|u| u.to_string())
        .unwrap_or_default();
    Some(format!(
        "{page_name} ({url}) is not accessible:\n{}",
        describe(&violations)
    ))
}

/// axe's violations on the page now in `client`, as JSON objects (id, impact, help, nodes).
pub async fn violations(client: &Client, page_name: &str) -> Vec<Value> {
    // A page load throws the previous injection away; inject once per document.
    let loaded = client
        .execute("return typeof window.axe === 'object';", vec![])
        .await
        .unwrap_or_else(|e| panic!("{page_name}: cannot run a script: {e}"));
    if loaded != json!(true) {
        client
            .execute(axe_source(), vec![])
            .await
            .unwrap_or_else(|e| panic!("{page_name}: axe-core does not load: {e}"));
    }
    let result = client
        .execute_async(RUN, vec![json!(TAGS)])
        .await
        .unwrap_or_else(|e| panic!("{page_name}: axe.run fails: {e}"));
    assert_eq!(
        result["ok"],
        json!(true),
        "{page_name}: axe.run fails: {}",
        result["error"]
    );
    result["violations"].as_array().cloned().unwrap_or_default()
}

/// One line per violation, then one per element it was found on.
fn describe(violations: &[Value]) -> String {
    let mut out = String::new();
    for v in violations {
        out.push_str(&format!(
            "- {} ({}): {}\n",
            v["id"].as_str().unwrap_or("?"),
            v["impact"].as_str().unwrap_or("?"),
            v["help"].as_str().unwrap_or("")
        ));
        for node in v["nodes"].as_array().into_iter().flatten() {
            let target = node["target"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ");
            let summary = node["summary"].as_str().unwrap_or("").replace('\n', " ");
            out.push_str(&format!("    on {target}: {summary}\n"));
        }
    }
    out
}
