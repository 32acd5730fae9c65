//! Consumer sign-in against a real OpenID Connect provider: npm's `oidc-provider`, run by
//! `tests/oidc/provider.mjs` (Google-, LINE- and Apple-like clients, plus clients whose ID
//! tokens the provider alters). The flow is driven over HTTP like a browser would, through the
//! provider's development login and consent forms. Needs `node` and `npm ci --prefix tests/oidc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ecoupon::config::{AppleSettings, ClientSettings, OidcSettings, Secret, SigninSettings};
use reqwest::header::{CONTENT_TYPE, SET_COOKIE};
use reqwest::{redirect::Policy, Client, Response, Url};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::helpers::{
    csrf_of, fresh_database, html_client, location, missing_dependency, page, post_form,
    require_tool, scratch_dir, spawn_app_on, test_settings, TestApp,
};

// The provider's client secrets (tests/oidc/provider.mjs, SECRETS).
pub(crate) const GOOGLE_SECRET: &str = "google-like-client-secret";
const LINE_SECRET: &str = "line-like-channel-secret-0123456789abcdef0123456789";
const TAMPER_SECRET: &str = "tamper-client-secret";
const RETURN_TO: &str = "/c/spring-sale";

struct Harness {
    app: TestApp,
    issuer: String,
    _provider: Provider,
}

/// Where the sign-in flow runs: a [`TestApp`] in this process, or a server started as its
/// own process (the log test).
pub(crate) trait Site {
    fn address(&self) -> &str;
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address())
    }
}

impl Site for TestApp {
    fn address(&self) -> &str {
        &self.address
    }
}

/// The OpenID provider, running, and the issuer URL it answers at.
pub(crate) struct Provider {
    pub issuer: String,
    pub apple_key: PathBuf,
    _child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl Provider {
    /// Tells the provider where the app is (its redirect URIs) and waits for it.
    pub async fn serve_app(&mut self, address: &str) {
        self.stdin
            .write_all(format!("{address}\n").as_bytes())
            .await
            .unwrap();
        assert_eq!(next_line(&mut self.stdout).await, "ready");
    }
}

/// Starts the provider. Without node or the provider's npm packages the test fails.
pub(crate) async fn provider() -> Provider {
    let node = require_tool("node");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    if !dir.join("node_modules/oidc-provider").is_dir() {
        missing_dependency("tests/oidc/node_modules (npm oidc-provider) is not installed");
    }
    let key_path = scratch_dir("apple").join("AuthKey_TEST.p8");
    let stderr = if std::env::var_os("OIDC_LOG").is_some() {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let mut child = Command::new(node)
        .arg(dir.join("provider.mjs"))
        .arg("0")
        .env("APPLE_KEY_PATH", &key_path)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr)
        .kill_on_drop(true)
        .spawn()
        .expect("node starts");
    let mut stdout = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = next_line(&mut stdout).await;
    let port: u16 = listening
        .strip_prefix("listening ")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| panic!("unexpected provider output {listening:?}"));
    let issuer = format!("http://127.0.0.1:{port}");
    let stdin = child.stdin.take().unwrap();
    Provider {
        issuer,
        apple_key: key_path,
        _child: child,
        stdin,
        stdout,
    }
}

/// Starts the provider, then the app configured for it.
async fn harness() -> Harness {
    let mut provider = provider().await;
    let settings = signin_settings(&provider.issuer, &provider.apple_key);
    let app = spawn_app_on(fresh_database().await, move |db| {
        let mut s = test_settings(db);
        s.signin = settings;
        s
    })
    .await;
    provider.serve_app(&app.address).await;
    Harness {
        app,
        issuer: provider.issuer.clone(),
        _provider: provider,
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the OIDC provider answers within 30 s")
        .unwrap()
        .expect("the OIDC provider exited early (run with OIDC_LOG=1 to see why)")
}

fn signin_settings(issuer: &str, apple_key: &Path) -> SigninSettings {
    let client = |id: &str, secret: &str| ClientSettings {
        client_id: id.into(),
        client_secret: Secret::new(secret.into()),
        issuer: Some(issuer.into()),
    };
    let tamper = |name: &str| OidcSettings {
        name: name.into(),
        label: None,
        issuer: issuer.into(),
        client_id: name.into(),
        client_secret: Secret::new(TAMPER_SECRET.into()),
    };
    SigninSettings {
        line: Some(client("line", LINE_SECRET)),
        google: Some(client("google", GOOGLE_SECRET)),
        apple: Some(AppleSettings {
            client_id: "apple".into(),
            team_id: "TEAM123456".into(),
            key_id: "KEY1234567".into(),
            private_key_path: apple_key.to_path_buf(),
            issuer: Some(issuer.into()),
        }),
        oidc: ["bad-aud", "bad-iss", "bad-sig", "bad-nonce"]
            .into_iter()
            .map(tamper)
            .collect(),
    }
}

/// Where the provider sends the browser back: a redirect, or Apple's auto-submitted form.
#[derive(Clone, Debug)]
pub(crate) enum Callback {
    Get(Url),
    Post(Url, Vec<(String, String)>),
}

impl Callback {
    pub(crate) fn param(&self, name: &str) -> Option<String> {
        match self {
            Callback::Get(url) => url
                .query_pairs()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.into_owned()),
            Callback::Post(_, form) => form.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()),
        }
    }

    /// The same callback with one parameter replaced (or added).
    fn with(&self, name: &str, value: &str) -> Callback {
        match self {
            Callback::Get(url) => {
                let mut url = url.clone();
                let pairs: Vec<(String, String)> = url
                    .query_pairs()
                    .filter(|(k, _)| k != name)
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .chain([(name.to_string(), value.to_string())])
                    .collect();
                url.query_pairs_mut().clear().extend_pairs(pairs);
                Callback::Get(url)
            }
            Callback::Post(url, form) => {
                let mut form: Vec<_> = form.iter().filter(|(k, _)| k != name).cloned().collect();
                form.push((name.into(), value.into()));
                Callback::Post(url.clone(), form)
            }
        }
    }

    pub(crate) async fn send(&self, client: &Client) -> Response {
        match self {
            Callback::Get(url) => client.get(url.clone()).send().await.unwrap(),
            Callback::Post(url, form) => client.post(url.clone()).form(form).send().await.unwrap(),
        }
    }
}

/// `/auth/{provider}/start`: the provider's authorization URL.
async fn start(b: &Client, app: &impl Site, provider: &str) -> Url {
    let res = b
        .get(app.url(&format!("/auth/{provider}/start?return_to={RETURN_TO}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    Url::parse(location(&res)).unwrap()
}

/// Starts a sign-in and goes through the provider's login and consent forms as `login`.
pub(crate) async fn through_provider(
    b: &Client,
    app: &impl Site,
    provider: &str,
    login: &str,
) -> Callback {
    let mut url = start(b, app, provider).await;
    for _ in 0..20 {
        if url.as_str().starts_with(app.address()) {
            return Callback::Get(url);
        }
        let res = b.get(url.clone()).send().await.unwrap();
        let res = if res.status() == 200 {
            let page = res.text().await.unwrap();
            let action = url
                .join(&unescape(between(&page, "action=\"", "\"")))
                .unwrap();
            if page.contains("name=\"prompt\" value=\"login\"") {
                let form = [("prompt", "login"), ("login", login), ("password", "any")];
                b.post(action).form(&form).send().await.unwrap()
            } else if page.contains("name=\"prompt\" value=\"consent\"") {
                b.post(action)
                    .form(&[("prompt", "consent")])
                    .send()
                    .await
                    .unwrap()
            } else {
                // response_mode=form_post: the page would post these fields to us.
                return Callback::Post(action, hidden_inputs(&page));
            }
        } else {
            res
        };
        assert!(
            res.status().is_redirection(),
            "{} at {url}: {:?}",
            res.status(),
            res.text().await
        );
        url = url.join(location(&res)).unwrap();
    }
    panic!("no callback after 20 steps");
}

/// The callback's answer, `/auth/complete`, then who `/auth/me` says we are.
pub(crate) async fn complete(b: &Client, app: &impl Site, callback_answer: Response) -> String {
    assert_eq!(
        callback_answer.status(),
        303,
        "{:?}",
        callback_answer.text().await
    );
    let next = location(&callback_answer).to_string();
    assert!(next.starts_with("/auth/complete?t="), "{next}");
    let res = b.get(app.url(&next)).send().await.unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    assert_eq!(location(&res), RETURN_TO);
    let session_cookie = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap())
        .find(|c| c.starts_with("ecoupon_session="))
        .expect("the session cookie is set on /auth/complete")
        .to_string();
    assert!(
        session_cookie.contains("HttpOnly") && session_cookie.contains("SameSite=Lax"),
        "{session_cookie}"
    );
    let me = whoami(b, app).await;
    assert_eq!(me["signed_in"], true, "{me}");
    me["consumer"].as_str().unwrap().to_string()
}

async fn assert_refused(res: Response, status: u16, code: &str) -> String {
    assert_eq!(res.status(), status, "expected {code}");
    let ct = res
        .headers()
        .get(CONTENT_TYPE)
        .unwrap()
        .to_str()
        .unwrap()
        .to_string();
    assert!(ct.starts_with("text/html"), "{ct}");
    let body = res.text().await.unwrap();
    assert!(
        body.contains(&format!("<code>{code}</code>")),
        "expected {code}: {body}"
    );
    body
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

fn hidden_inputs(page: &str) -> Vec<(String, String)> {
    page.split("<input type=\"hidden\" ")
        .skip(1)
        .map(|input| {
            (
                unescape(between(input, "name=\"", "\"")),
                unescape(between(input, "value=\"", "\"")),
            )
        })
        .collect()
}

fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x3D;", "=")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

#[actix_web::test]
async fn google_line_and_apple_sign_in_end_to_end() {
    let h = harness().await;
    let app = &h.app;

    // The sign-in page lists every enabled provider, keeping return_to.
    let (status, html) = page(
        &html_client(None),
        &app.url("/auth/signin?return_to=/c/spring-sale"),
    )
    .await;
    assert_eq!(status, 200);
    let html = unescape(&html);
    for p in ["line", "google", "apple"] {
        assert!(
            html.contains(&format!("/auth/{p}/start?return_to=%2Fc%2Fspring-sale")),
            "{html}"
        );
    }

    // Google-like: RS256, client_secret_basic, query callback.
    let b = html_client(None);
    let cb = through_provider(&b, app, "google", "alice").await;
    assert!(matches!(cb, Callback::Get(_)));
    assert_eq!(cb.param("iss").as_deref(), Some(h.issuer.as_str()));
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:alice"
    );

    // LINE-like: HS256 ID token signed with the channel secret.
    let b = html_client(None);
    let cb = through_provider(&b, app, "line", "U4af4980629").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:line:U4af4980629"
    );

    // Apple-like: form_post, a cross-site POST that carries no cookie at all; the token
    // request authenticates with the ES256 JWT we mint (the provider verifies it).
    let b = html_client(None);
    let cb = through_provider(&b, app, "apple", "001234.abcd").await;
    assert!(matches!(cb, Callback::Post(..)), "{cb:?}");
    let cookieless = Client::builder().redirect(Policy::none()).build().unwrap();
    let answer = cb.send(&cookieless).await;
    assert_eq!(complete(&b, app, answer).await, "oidc:apple:001234.abcd");

    // Signing in again is the same consumer; only (provider, subject) is kept.
    let b = html_client(None);
    let cb = through_provider(&b, app, "google", "alice").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:alice"
    );
    let db = app.db.client().await;
    let rows = db
        .query(
            "SELECT provider, subject FROM consumers ORDER BY provider",
            &[],
        )
        .await
        .unwrap();
    let got: Vec<(String, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    assert_eq!(
        got,
        [
            ("apple", "001234.abcd"),
            ("google", "alice"),
            ("line", "U4af4980629")
        ]
        .map(|(p, s)| (p.to_string(), s.to_string()))
    );
    let columns: Vec<String> = db
        .query(
            "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'consumers' ORDER BY ordinal_position",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        columns,
        ["id", "provider", "subject", "created_at", "last_seen_at"]
    );
}

#[actix_web::test]
async fn tampered_id_tokens_are_refused() {
    let h = harness().await;
    let app = &h.app;
    for (provider, code, why) in [
        ("bad-aud", "signin_token_invalid", "(audience)"),
        ("bad-iss", "signin_token_invalid", "(issuer)"),
        ("bad-sig", "signin_token_invalid", "(signature)"),
        ("bad-nonce", "signin_nonce_mismatch", "(nonce)"),
    ] {
        let b = html_client(None);
        let cb = through_provider(&b, app, provider, "mallory").await;
        let body = assert_refused(cb.send(&b).await, 400, code).await;
        assert!(body.contains(why), "{provider}: {body}");
        let me = whoami(&b, app).await;
        assert_eq!(me["signed_in"], false, "{provider}: {me}");
    }
    let consumers: i64 = app
        .db
        .client()
        .await
        .query_one("SELECT count(*) FROM consumers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(consumers, 0);
}

#[actix_web::test]
async fn bad_and_replayed_callbacks_are_refused() {
    let h = harness().await;
    let app = &h.app;
    let b = html_client(None);

    // Unknown provider, and a return_to that leaves the site.
    assert_refused(
        b.get(app.url("/auth/nope/start")).send().await.unwrap(),
        404,
        "not_found",
    )
    .await;
    for bad in [
        "//evil.example/",
        "https://evil.example/",
        "/\\evil.example",
    ] {
        let url = format!(
            "{}/auth/google/start?return_to={}",
            app.address,
            urlencode(bad)
        );
        assert_refused(b.get(url).send().await.unwrap(), 422, "invalid_return_to").await;
    }
    let cb_url = |q: &str| app.url(&format!("/auth/google/callback?{q}"));

    // A state we never issued, or none.
    assert_refused(
        b.get(cb_url("state=forged&code=x")).send().await.unwrap(),
        400,
        "signin_state_invalid",
    )
    .await;
    assert_refused(
        b.get(cb_url("code=x")).send().await.unwrap(),
        400,
        "signin_state_invalid",
    )
    .await;
    let res = b
        .post(app.url("/auth/apple/callback"))
        .form(&[("state", "forged"), ("code", "x")])
        .send()
        .await
        .unwrap();
    assert_refused(res, 400, "signin_state_invalid").await;

    // The provider says no.
    let auth = start(&b, app, "google").await;
    let state = auth
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let denied = cb_url(&format!("error=access_denied&state={}", urlencode(&state)));
    assert_refused(b.get(&denied).send().await.unwrap(), 400, "signin_denied").await;
    // …and that state is spent.
    assert_refused(b.get(&denied).send().await.unwrap(), 400, "signin_replayed").await;

    // A real sign-in's state used at another provider's callback.
    let cb = through_provider(&b, app, "google", "carol").await;
    let Callback::Get(url) = &cb else { panic!() };
    let elsewhere = app.url(&format!("/auth/line/callback?{}", url.query().unwrap()));
    assert_refused(
        b.get(elsewhere).send().await.unwrap(),
        400,
        "signin_state_invalid",
    )
    .await;

    // A callback naming another issuer (RFC 9207 mix-up defence).
    assert_refused(
        cb.with("iss", "https://evil.example").send(&b).await,
        400,
        "signin_issuer_mismatch",
    )
    .await;

    // Replays: the same callback twice; then its (spent) code with a fresh state.
    let cb = through_provider(&b, app, "google", "carol").await;
    let first = cb.send(&b).await;
    assert_eq!(first.status(), 303);
    assert_refused(cb.send(&b).await, 400, "signin_replayed").await;
    let fresh = start(&b, app, "google").await;
    let fresh_state = fresh
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();
    let old_code_new_state = cb.with("state", &fresh_state);
    assert_refused(
        old_code_new_state.send(&b).await,
        400,
        "signin_code_rejected",
    )
    .await;

    // The completion link only works in the browser that started, and only once.
    let next = location(&first).to_string();
    let other_browser = html_client(None);
    assert_refused(
        other_browser.get(app.url(&next)).send().await.unwrap(),
        400,
        "signin_browser_mismatch",
    )
    .await;
    assert_refused(
        b.get(app.url(&next)).send().await.unwrap(),
        400,
        "signin_link_invalid",
    )
    .await;
    assert_refused(
        b.get(app.url("/auth/complete?t=nope"))
            .send()
            .await
            .unwrap(),
        400,
        "signin_link_invalid",
    )
    .await;

    let me = whoami(&b, app).await;
    assert_eq!(me["signed_in"], false, "{me}");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[actix_web::test]
async fn a_merchant_can_limit_the_providers_its_consumers_use() {
    let h = harness().await;
    let app = &h.app;
    let res = app
        .patch("/api/v1/tenant")
        .json(&serde_json::json!({"signin_providers": ["google"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let c = app
        .create_campaign(serde_json::json!({"name": "members", "total_limit": 5, "status": "active", "signin": "required"}))
        .await;
    let slug = c["slug"].as_str().unwrap();
    let (_, html) = page(
        &html_client(None),
        &app.url(&format!("/auth/signin?return_to=/c/{slug}")),
    )
    .await;
    assert!(
        html.contains("/auth/google/start") && !html.contains("/auth/line/start"),
        "{html}"
    );
    let res = html_client(None)
        .get(app.url(&format!("/auth/line/start?return_to=/c/{slug}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    // Signed in with LINE through a return_to that is no claim page of this merchant: the
    // claim page still asks for an accepted sign-in, and a claim posted anyway is sent to
    // sign in, with no coupon made.
    let b = html_client(None);
    let cb = through_provider(&b, app, "line", "U-bypass").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:line:U-bypass"
    );
    let (_, html) = page(&b, &app.url(&format!("/c/{slug}"))).await;
    assert!(!html.contains("id=\"claim-form\""), "{html}");
    assert!(html.contains("id=\"signin-button\""), "{html}");
    let me = whoami(&b, app).await;
    let csrf = {
        // The session's token, from a page that has a form: the wallet's sign-out.
        let (_, wallet) = page(&b, &app.url("/my")).await;
        csrf_of(&wallet)
    };
    let res = post_form(&b, &app.url(&format!("/c/{slug}/claim")), &csrf).await;
    assert_eq!(res.status(), 303, "{me}");
    assert_eq!(location(&res), format!("/auth/signin?return_to=/c/{slug}"));
    let coupons: i64 = app.db_value("SELECT count(*) FROM coupons", &[]).await;
    assert_eq!(coupons, 0);
    // With the accepted provider the claim goes through.
    // (The provider remembers this browser's login, so the subject is the earlier one.)
    let cb = through_provider(&b, app, "google", "dave").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:U-bypass"
    );
    let (_, html) = page(&b, &app.url(&format!("/c/{slug}"))).await;
    let res = post_form(&b, &app.url(&format!("/c/{slug}/claim")), &csrf_of(&html)).await;
    assert!(
        location(&res).starts_with("/my/coupons/"),
        "{}",
        location(&res)
    );
}

#[actix_web::test]
async fn a_signed_in_consumer_claims_a_sign_in_campaign_and_finds_it_in_the_wallet() {
    let h = harness().await;
    let app = &h.app;
    let c = app
        .create_campaign(serde_json::json!({"name": "members only", "total_limit": 5, "status": "active", "signin": "required"}))
        .await;
    let slug = c["slug"].as_str().unwrap();
    let b = html_client(None);
    let cb = through_provider(&b, app, "google", "carol").await;
    assert_eq!(
        complete(&b, app, cb.send(&b).await).await,
        "oidc:google:carol"
    );

    let (_, html) = page(&b, &app.url(&format!("/c/{slug}"))).await;
    assert!(
        html.contains("id=\"claim-form\""),
        "signed in, the claim form shows: {html}"
    );
    let res = post_form(&b, &app.url(&format!("/c/{slug}/claim")), &csrf_of(&html)).await;
    assert_eq!(res.status(), 303);
    let coupon = location(&res).to_string();
    assert!(coupon.starts_with("/my/coupons/"), "{coupon}");
    let db = app.db.client().await;
    let consumer: String = db
        .query_one("SELECT consumer FROM coupons", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(consumer, "oidc:google:carol");
    let (_, wallet) = page(&b, &app.url("/my")).await;
    assert!(wallet.contains(&coupon));

    // Sign-out (a form on the wallet): the session is gone, the coupon stays with the
    // signed-in consumer, and signing in again finds it.
    assert!(wallet.contains("id=\"signout-button\""), "{wallet}");
    let res = post_form(&b, &app.url("/auth/signout"), &csrf_of(&wallet)).await;
    assert_eq!(res.status(), 303);
    let me = whoami(&b, app).await;
    assert_eq!(me["signed_in"], false, "{me}");
    let (_, wallet) = page(&b, &app.url("/my")).await;
    assert!(!wallet.contains(&coupon));
    let cb = through_provider(&b, app, "google", "carol").await;
    complete(&b, app, cb.send(&b).await).await;
    let (_, wallet) = page(&b, &app.url("/my")).await;
    assert!(wallet.contains(&coupon));
}

/// What `/auth/me` says about this browser's session.
async fn whoami(b: &Client, app: &impl Site) -> serde_json::Value {
    b.get(app.url("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
