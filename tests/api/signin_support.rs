//! What the sign-in tests share: npm's `oidc-provider`, run by `tests/oidc/provider.mjs`
//! (Google-, LINE- and Apple-like clients, plus clients whose ID tokens the provider alters),
//! the app configured for it, and the flow driven over HTTP like a browser would, through the
//! provider's development login and consent forms. Needs `node` and `npm ci --prefix tests/oidc`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use ecoupon::config::{AppleSettings, ClientSettings, OidcSettings, Secret, SigninSettings};
use reqwest::header::{CONTENT_TYPE, SET_COOKIE};
use reqwest::{Client, Response, Url};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use crate::helpers::{
    fresh_database, location, missing_dependency, require_tool, scratch_dir, spawn_app_on,
    test_settings, TestApp,
};

// The provider's client secrets (tests/oidc/provider.mjs, SECRETS).
pub(crate) const GOOGLE_SECRET: &str = "google-like-client-secret";
pub(crate) const LINE_SECRET: &str = "line-like-channel-secret-0123456789abcdef0123456789";
pub(crate) const TAMPER_SECRET: &str = "tamper-client-secret";
pub(crate) const RETURN_TO: &str = "/c/spring-sale";

pub(crate) struct Harness {
    pub(crate) app: TestApp,
    pub(crate) issuer: String,
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
pub(crate) async fn harness() -> Harness {
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

pub(crate) async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the OIDC provider answers within 30 s")
        .unwrap()
        .expect("the OIDC provider exited early (run with OIDC_LOG=1 to see why)")
}

pub(crate) fn signin_settings(issuer: &str, apple_key: &Path) -> SigninSettings {
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
    pub(crate) fn with(&self, name: &str, value: &str) -> Callback {
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
pub(crate) async fn start(b: &Client, app: &impl Site, provider: &str) -> Url {
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

pub(crate) async fn assert_refused(res: Response, status: u16, code: &str) -> String {
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

pub(crate) fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no {start} in {text}"))
        + start.len();
    let len = text[from..].find(end).unwrap();
    &text[from..from + len]
}

pub(crate) fn hidden_inputs(page: &str) -> Vec<(String, String)> {
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

pub(crate) fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x3D;", "=")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}
pub(crate) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What `/auth/me` says about this browser's session.
pub(crate) async fn whoami(b: &Client, app: &impl Site) -> serde_json::Value {
    b.get(app.url("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
