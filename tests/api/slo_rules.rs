//! The rules and dashboards in `dashboards/`: promtool checks the rule files and runs their
//! unit tests; every alert has a test that fires it, one that keeps it quiet, and a row in
//! the runbook; the Grafana dashboards import as they are.

use std::collections::BTreeSet;
use std::process::Command;

use crate::helpers::require_tool;
use crate::monitoring::{
    dashboards, grafana_files, read, rule_files, rule_test_files, yaml_values,
};

fn promtool(args: &[&str], files: &[std::path::PathBuf]) {
    let out = Command::new(require_tool("promtool"))
        .args(args)
        .args(files)
        .output()
        .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "promtool {args:?} failed:\n{report}");
}

#[test]
fn promtool_checks_the_rules_and_passes_their_unit_tests() {
    promtool(&["check", "rules"], &rule_files());
    // Unit tests resolve rule_files relative to themselves.
    promtool(&["test", "rules"], &rule_test_files());
}

fn alerts_in(file: &std::path::Path) -> Vec<String> {
    yaml_values(&read(file), "alert")
}

/// (alerts a test expects to fire, alerts a test expects to stay quiet), over every test file.
fn tested_alerts() -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut fires, mut quiet) = (BTreeSet::new(), BTreeSet::new());
    for file in rule_test_files() {
        let text = read(&file);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let Some(name) = line.trim().strip_prefix("alertname: ") else {
                continue;
            };
            let expectation = lines
                .get(i + 1)
                .map(|l| l.trim())
                .unwrap_or_default()
                .to_string();
            match expectation.as_str() {
                "exp_alerts: []" => quiet.insert(name.to_string()),
                "exp_alerts:" => fires.insert(name.to_string()),
                other => panic!("{}: {name} followed by {other:?}", file.display()),
            };
        }
    }
    (fires, quiet)
}

#[test]
fn every_alert_is_tested_both_ways_and_has_a_runbook_row() {
    let liveness = alerts_in(&dashboards().join("prometheus/alerts.rules.yml"));
    assert!(
        liveness.len() >= 19,
        "row 31 asks for at least 19 liveness and saturation alerts, found {}",
        liveness.len()
    );
    let all: Vec<String> = rule_files().iter().flat_map(|f| alerts_in(f)).collect();
    let unique: BTreeSet<&String> = all.iter().collect();
    assert_eq!(unique.len(), all.len(), "an alert name is used twice");
    for slo in ["Availability", "ClaimLatency"] {
        for severity in ["Page", "Ticket"] {
            let name = format!("Ecoupon{slo}BurnRate{severity}");
            assert!(all.contains(&name), "{name} missing");
        }
    }
    let (fires, quiet) = tested_alerts();
    let runbook = read(&dashboards().join("README.md"));
    for alert in &all {
        assert!(fires.contains(alert), "no unit test makes {alert} fire");
        assert!(quiet.contains(alert), "no unit test keeps {alert} quiet");
        assert!(
            runbook.contains(&format!("| `{alert}` |")),
            "{alert} has no row in the runbook table of dashboards/README.md"
        );
    }
    for tested in fires.union(&quiet) {
        assert!(all.contains(tested), "tests name an unknown alert {tested}");
    }
}

#[test]
fn grafana_dashboards_import_as_they_are() {
    let mut titles = BTreeSet::new();
    for file in grafana_files() {
        let name = file.display().to_string();
        let board: serde_json::Value = serde_json::from_str(&read(&file)).unwrap();
        titles.insert(board["title"].as_str().unwrap().to_string());
        assert!(board["id"].is_null(), "{name}: id must be null to import");
        assert!(board.get("__inputs").is_none(), "{name}: no import inputs");
        assert!(board["uid"].as_str().is_some_and(|u| !u.is_empty()));
        let variables = board["templating"]["list"].as_array().unwrap();
        assert!(
            variables.iter().any(|v| v["name"] == "datasource"
                && v["type"] == "datasource"
                && v["query"] == "prometheus"),
            "{name}: a datasource variable of type prometheus"
        );
        let panels = board["panels"].as_array().unwrap();
        let mut ids = BTreeSet::new();
        for panel in panels {
            let title = panel["title"].as_str().unwrap();
            assert!(
                ids.insert(panel["id"].as_i64().unwrap()),
                "{name}: panel ids repeat"
            );
            assert_eq!(
                panel["datasource"]["uid"], "${datasource}",
                "{name}: {title}"
            );
            let targets = panel["targets"].as_array().unwrap();
            assert!(!targets.is_empty(), "{name}: {title} has no query");
            for t in targets {
                assert_eq!(t["datasource"]["uid"], "${datasource}", "{name}: {title}");
                assert!(t["expr"].as_str().is_some_and(|e| !e.is_empty()));
            }
            let pos = &panel["gridPos"];
            let right = pos["x"].as_i64().unwrap() + pos["w"].as_i64().unwrap();
            assert!(right <= 24, "{name}: {title} is wider than the grid");
        }
    }
    let want: BTreeSet<String> = ["ecoupon SLO", "ecoupon engine"].map(String::from).into();
    assert_eq!(titles, want);
}
