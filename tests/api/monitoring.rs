//! Shared by the monitoring tests: the files in `dashboards/`, the PromQL they hold and the
//! metric names that PromQL reads.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

pub fn dashboards() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("dashboards")
}

/// Files of `dir` whose names end with `suffix`, sorted.
pub fn files(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    found.sort();
    assert!(!found.is_empty(), "no *{suffix} in {}", dir.display());
    found
}

pub fn rule_files() -> Vec<PathBuf> {
    files(&dashboards().join("prometheus"), ".rules.yml")
}

pub fn rule_test_files() -> Vec<PathBuf> {
    files(&dashboards().join("prometheus/tests"), ".test.yml")
}

pub fn grafana_files() -> Vec<PathBuf> {
    files(&dashboards().join("grafana"), ".json")
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The values of `key:` in a YAML file as the rule files write them: on the line, or as a
/// block scalar (`key: |`) on the more indented lines below.
pub fn yaml_values(text: &str, key: &str) -> Vec<String> {
    let lines: Vec<&str> = text.lines().collect();
    let mut values = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let trimmed = line.trim_start().trim_start_matches("- ");
        let indent = line.len() - line.trim_start().len();
        i += 1;
        let Some(rest) = trimmed.strip_prefix(&format!("{key}:")) else {
            continue;
        };
        let rest = rest.trim();
        if rest.starts_with('|') || rest.starts_with('>') {
            let mut block = Vec::new();
            while i < lines.len() {
                let next = lines[i];
                let next_indent = next.len() - next.trim_start().len();
                if !next.trim().is_empty() && next_indent <= indent {
                    break;
                }
                block.push(next.trim());
                i += 1;
            }
            values.push(block.join("\n"));
        } else {
            let unquoted = rest
                .strip_prefix('\'')
                .and_then(|r| r.strip_suffix('\''))
                .map(|r| r.replace("''", "'"))
                .unwrap_or_else(|| rest.to_string());
            values.push(unquoted);
        }
    }
    values
}

/// Every PromQL expression in the rule files and the Grafana dashboards.
pub fn all_expressions() -> Vec<(PathBuf, String)> {
    let mut exprs = Vec::new();
    for file in rule_files() {
        for e in yaml_values(&read(&file), "expr") {
            exprs.push((file.clone(), e));
        }
    }
    for file in grafana_files() {
        let json: serde_json::Value = serde_json::from_str(&read(&file)).unwrap();
        let mut found = Vec::new();
        collect_key(&json, "expr", &mut found);
        exprs.extend(found.into_iter().map(|e| (file.clone(), e)));
    }
    exprs
}

pub fn collect_key(value: &serde_json::Value, key: &str, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (k, v) in map {
                match v {
                    serde_json::Value::String(s) if k == key => out.push(s.clone()),
                    other => collect_key(other, key, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_key(v, key, out)),
        _ => {}
    }
}

/// Words of PromQL that are never metric names.
const KEYWORDS: &[&str] = &[
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "sum",
    "min",
    "max",
    "avg",
    "count",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "group",
    "inf",
    "nan",
    "Inf",
    "NaN",
];
/// Keywords followed by a list of label names.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// Skips from `open` (an opening bracket at `i`) to just past its closing one, stepping
/// over quoted strings, which may hold brackets.
fn skip_group(chars: &[char], mut i: usize, open: char, close: char) -> usize {
    let mut depth = 0;
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' | '`' => i = skip_string(chars, i),
            c if c == open => {
                depth += 1;
                i += 1;
            }
            c if c == close => {
                depth -= 1;
                i += 1;
                if depth == 0 {
                    return i;
                }
            }
            _ => i += 1,
        }
    }
    i
}

fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i + 1
}

/// The series names an expression reads: identifiers outside strings, label matchers and
/// ranges that are not functions, keywords or grouping labels. Recording rules (with a
/// colon) are included; callers tell them apart.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '"' || c == '\'' || c == '`' {
            i = skip_string(&chars, i);
        } else if c == '{' {
            i = skip_group(&chars, i, '{', '}');
        } else if c == '[' {
            i = skip_group(&chars, i, '[', ']');
        } else if c == '$' || c.is_ascii_digit() || c == '.' {
            // Grafana variables ($instance) and numbers (0.99, 2e9).
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i])) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let mut next = i;
            while next < chars.len() && chars[next].is_whitespace() {
                next += 1;
            }
            let followed_by_paren = chars.get(next) == Some(&'(');
            if LABEL_LISTS.contains(&word.as_str()) {
                if followed_by_paren {
                    i = skip_group(&chars, next, '(', ')');
                }
            } else if !followed_by_paren && !KEYWORDS.contains(&word.as_str()) {
                names.insert(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Names Prometheus itself makes: not ecoupon's to export.
pub const PROMETHEUS_BUILTINS: &[&str] = &["up", "ALERTS", "ALERTS_FOR_STATE"];

#[test]
fn names_are_read_out_of_promql() {
    let found = metric_names(
        r#"histogram_quantile(0.99, sum by (job, le) (rate(x_bucket{route=~"/a/\\{id\\}",le="0.1"}[$__rate_interval])))
           / on(instance) group_left(version) ecoupon_build_info{instance=~"$instance"} > 2e9
           and max(slo:sli_error:ratio_rate5m{slo="a"} > (14.4 * (1 - 0.99))) without (window)
           or vector(0) unless absent(up{job="ecoupon"}) - time() offset 5m"#,
    );
    let found: Vec<&str> = found.iter().map(String::as_str).collect();
    assert_eq!(
        found,
        [
            "ecoupon_build_info",
            "slo:sli_error:ratio_rate5m",
            "up",
            "x_bucket"
        ]
    );
}

#[test]
fn yaml_values_read_lines_and_blocks() {
    let text = "- alert: A\n  expr: up == 0\n  for: 2m\n- record: r\n  expr: |\n    sum(a)\n    / sum(b)\n  labels:\n    x: y\n- expr: 'it''s'\n";
    assert_eq!(
        yaml_values(text, "expr"),
        ["up == 0", "sum(a)\n/ sum(b)", "it's"]
    );
}
