//! Merchant console helpers: users with known passwords, and signed-in browsers (HTTP
//! clients that keep cookies and follow no redirect by themselves).

use ecoupon::domain::tenant::hash_password;
use uuid::Uuid;

use crate::helpers::{csrf_of, html_client, location, page, TestApp};

/// A password that passes the console's rules.
pub const PASSWORD: &str = "the quiet river bends at dawn";

impl TestApp {
    /// Adds a user of `role` ("owner", "admin", "manager", "staff") to this app's tenant,
    /// with [`PASSWORD`] and nothing left to do at first sign-in. Returns the e-mail.
    pub async fn add_user(&self, role: &str) -> String {
        self.add_user_to(self.tenant_id, role).await
    }

    pub async fn add_user_to(&self, tenant_id: Uuid, role: &str) -> String {
        let email = format!(
            "{role}-{}@shop.example",
            &Uuid::new_v4().simple().to_string()[..8]
        );
        let hash = hash_password(PASSWORD);
        self.db
            .client()
            .await
            .execute(
                "INSERT INTO merchant_users (id, tenant_id, email, role, password_hash) VALUES ($1, $2, $3, $4, $5)",
                &[&Uuid::new_v4(), &tenant_id, &email, &role, &hash],
            )
            .await
            .expect("user inserted");
        email
    }

    /// A browser signed in to the console as `email` (with [`PASSWORD`]).
    pub async fn console_as(&self, email: &str) -> reqwest::Client {
        self.console_lang(email, "ja").await
    }

    pub async fn console_lang(&self, email: &str, lang: &str) -> reqwest::Client {
        let client = html_client(Some(lang));
        let res = sign_in(self, &client, email, PASSWORD).await;
        assert_eq!(res.status(), 303, "sign-in of {email} succeeds");
        assert_eq!(location(&res), "/merchant");
        client
    }

    /// A user of `role` and a browser signed in as them.
    #[allow(dead_code)] // used by the console test files as they land
    pub async fn console_user(&self, role: &str) -> (String, reqwest::Client) {
        let email = self.add_user(role).await;
        let client = self.console_as(&email).await;
        (email, client)
    }
}

/// Opens the sign-in form and posts it: the raw answer.
pub async fn sign_in(
    app: &TestApp,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let (status, html) = page(client, &app.url("/merchant/login")).await;
    assert_eq!(status, 200);
    let csrf = csrf_of(&html);
    client
        .post(app.url("/merchant/login"))
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap()
}

/// GETs a console page and returns (status, body); the page's CSRF token is in the body.
pub async fn console_page(app: &TestApp, client: &reqwest::Client, path: &str) -> (u16, String) {
    page(client, &app.url(path)).await
}

/// POSTs a console form (`fields` plus the CSRF token taken from `form_page`).
pub async fn console_post(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
) -> reqwest::Response {
    let (status, html) = console_page(app, client, form_page).await;
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
