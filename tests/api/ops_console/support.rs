//! Operators with known passwords, and browsers signed in to the operator console.

use ecoupon::domain::tenant::hash_password;
use uuid::Uuid;

use crate::helpers::{csrf_of, html_client, location, page, TestApp};

/// An operator's password in these tests.
pub const OPS_PASSWORD: &str = "lanterns over the harbour at night";

/// Adds an operator with [`OPS_PASSWORD`] in `status` ("active", "pending", "disabled");
/// returns (id, e-mail).
pub async fn add_operator(app: &TestApp, status: &str) -> (Uuid, String) {
    let email = format!(
        "op-{}@ops.example",
        &Uuid::new_v4().simple().to_string()[..8]
    );
    add_operator_as(app, &email, status, OPS_PASSWORD).await
}

pub async fn add_operator_as(
    app: &TestApp,
    email: &str,
    status: &str,
    password: &str,
) -> (Uuid, String) {
    let id = Uuid::new_v4();
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO operators (id, email, password_hash, status, requested_by) VALUES ($1, $2, $3, $4, 'test')",
            &[&id, &email, &hash_password(password), &status],
        )
        .await
        .expect("operator inserted");
    (id, email.to_string())
}

/// Opens the operator sign-in form and posts it: the raw answer.
pub async fn ops_sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let (status, html) = page(client, &app.url("/ops/login")).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    client
        .post(app.url("/ops/login"))
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

/// The value of the cookie `name` a response sets, with its attributes.
pub fn set_cookie(res: &reqwest::Response, name: &str) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|c| c.starts_with(&format!("{name}=")))
}

/// The bare value of a `Set-Cookie` line.
pub fn cookie_value(line: &str) -> String {
    line.split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
        .to_string()
}

/// A browser signed in as the operator `email`, and its session id.
pub async fn ops_as(app: &TestApp, email: &str, lang: &str) -> (reqwest::Client, String) {
    let client = html_client(Some(lang));
    let res = ops_sign_in(app, &client, email, OPS_PASSWORD).await;
    assert_eq!(res.status(), 303, "operator sign-in of {email} succeeds");
    assert_eq!(location(&res), "/ops/notices");
    let session = cookie_value(&set_cookie(&res, "ecoupon_ops").expect("a session cookie"));
    (client, session)
}

/// POSTs an operator form: `fields` plus the CSRF token of the page `form_page`.
pub async fn ops_post(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (status, html) = page(client, &app.url(form_page)).await;
    assert_eq!(status, 200, "{form_page} opens");
    let csrf = csrf_of(&html);
    let mut all: Vec<(&str, &str)> = fields.to_vec();
    all.push(("csrf", &csrf));
    client
        .post(app.url(action))
        .form(&all)
        .send()
        .await
        .unwrap()
}

/// Audit lines `action actor target` of actions starting with `prefix`, oldest first.
pub async fn audit_trail(app: &TestApp, prefix: &str) -> Vec<String> {
    app.db
        .client()
        .await
        .query(
            "SELECT action || ' ' || actor || ' ' || target FROM audit_log
             WHERE action LIKE $1 || '%' ORDER BY seq",
            &[&prefix],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}
