//! Real answers checked against the served OpenAPI document.

use super::{missing_dependency, require_tool, TestApp};

/// Real answers checked against the served OpenAPI document by tests/openapi/check.py
/// (Python's openapi-spec-validator and jsonschema, from .ci/install-deps): the document is
/// valid OpenAPI 3.1; each answer's status is documented for its operation, its body
/// matches that status's schema and declares nothing the schema does not; an error's code
/// is listed for its status. Record answers with [`OpenApiCheck::send`], then `check`.
#[derive(Default)]
pub struct OpenApiCheck {
    answers: Vec<serde_json::Value>,
}

impl OpenApiCheck {
    /// Sends `request` (for the documented `method` and `path` template, e.g.
    /// `"/api/v1/coupons/{code}"`), records its answer and returns (status, body).
    pub async fn send(
        &mut self,
        method: &str,
        path: &str,
        request: reqwest::RequestBuilder,
    ) -> (u16, serde_json::Value) {
        let res = request.send().await.expect("request");
        let status = res.status().as_u16();
        let text = res.text().await.expect("body");
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
        };
        self.record(method, path, status, &body);
        (status, body)
    }

    pub fn record(&mut self, method: &str, path: &str, status: u16, body: &serde_json::Value) {
        self.answers.push(serde_json::json!({
            "method": method, "path": path, "status": status, "body": body,
        }));
    }

    /// Fails listing every mismatch. Returns how many answers were checked.
    pub async fn check(self, app: &TestApp) -> usize {
        let problems = self.problems(app).await;
        assert!(
            problems.is_empty(),
            "answers do not match the OpenAPI document:\n{}",
            problems.join("\n")
        );
        self.answers.len()
    }

    /// Every mismatch, one line each.
    pub async fn problems(&self, app: &TestApp) -> Vec<String> {
        use std::io::Write;
        let document: serde_json::Value = app
            .client
            .get(app.url("/api/v1/openapi.json"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .expect("the OpenAPI document is JSON");
        let python = require_tool("python3");
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/openapi/check.py");
        let mut child = std::process::Command::new(python)
            .arg(script)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("run tests/openapi/check.py");
        let input = serde_json::json!({"document": document, "answers": self.answers});
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.to_string().as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        let report = String::from_utf8_lossy(&out.stdout);
        if out.status.code() == Some(3) {
            missing_dependency(&format!("{report} (openapi-spec-validator for python3)"));
        }
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "tests/openapi/check.py failed: {report}"
        );
        report.lines().map(str::to_owned).collect()
    }
}
