//! No secret reaches the log. The real server runs as its own process at `debug`, with
//! JSON logs, through a whole flow: the demo tenant's secrets, an OpenID Connect sign-in
//! (its `code` and `state`), a claim on the consumer page, a redemption by the API and
//! the 4xx answers that carry a coupon code in their path, an API key made on the console's
//! keys page. Then every line it wrote is
//! searched for each code and secret the flow used.

use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::helpers::{
    csrf_of, fresh_database, html_client, location, page, post_form, scratch_dir,
};
use crate::signin_support::{complete, provider, through_provider, Site, GOOGLE_SECRET};

struct Spawned {
    address: String,
}

impl Site for Spawned {
    fn address(&self) -> &str {
        &self.address
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn field<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}: ")))
        .unwrap_or_else(|| panic!("no {key} in {text}"))
        .trim()
}

#[actix_web::test]
async fn a_full_flow_logs_no_code_or_secret() {
    let mut provider = provider().await;
    let db = fresh_database().await;
    let port = free_port();
    let site = Spawned {
        address: format!("http://127.0.0.1:{port}"),
    };
    let data = scratch_dir("log-secrets");
    let log_path = data.join("server.log");
    let out_path = data.join("server.out");
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_ecoupon"))
        .args([
            "serve",
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
        ])
        .arg(&data)
        .env("DATABASE_URL", &db.url)
        .env("RUST_LOG", "debug")
        .env("ECOUPON_LOG__FORMAT", "json")
        .env("ECOUPON_SIGNIN__GOOGLE__CLIENT_ID", "google")
        .env("ECOUPON_SIGNIN__GOOGLE__CLIENT_SECRET", GOOGLE_SECRET)
        .env("ECOUPON_SIGNIN__GOOGLE__ISSUER", &provider.issuer)
        .stdout(Stdio::from(std::fs::File::create(&out_path).unwrap()))
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..600 {
        if let Ok(res) = client.get(site.url("/readyz")).send().await {
            up = res.status() == 200;
            if up {
                break;
            }
        }
        if let Ok(Some(status)) = server.try_wait() {
            panic!("the server exited: {status}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not become ready within 60 s");
    provider.serve_app(&site.address).await;

    // The demo tenant's secrets, from the file `serve` wrote (stdout is no terminal).
    let credentials = std::fs::read_to_string(data.join("demo-credentials.txt")).unwrap();
    let api_key = field(&credentials, "api_key").to_string();
    let password = field(&credentials, "owner_password").to_string();
    let api = |req: reqwest::RequestBuilder| req.bearer_auth(&api_key).send();

    let campaign: serde_json::Value = api(client.post(site.url("/api/v1/campaigns")).json(
        &json!({"name": "members", "total_limit": 5, "status": "active", "signin": "required"}),
    ))
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let slug = campaign["slug"].as_str().unwrap().to_string();

    // Sign in: the provider's code and state come back on the callback.
    let b = html_client(None);
    let callback = through_provider(&b, &site, "google", "erin").await;
    let oidc_code = callback.param("code").unwrap();
    let oidc_state = callback.param("state").unwrap();
    let answer = callback.send(&b).await;
    let complete_link = location(&answer).to_string();
    let complete_token = complete_link.split("t=").nth(1).unwrap().to_string();
    assert_eq!(complete(&b, &site, answer).await, "oidc:google:erin");
    // The same callback again (a replay) is refused: a 4xx with the code in the URL.
    let replay = callback.send(&b).await;
    assert_eq!(replay.status(), 400);

    // Claim on the page, then find the code on the coupon screen.
    let (_, html) = page(&b, &site.url(&format!("/c/{slug}"))).await;
    let csrf = csrf_of(&html);
    let res = post_form(&b, &site.url(&format!("/c/{slug}/claim")), &csrf).await;
    let coupon_page = location(&res).to_string();
    assert!(coupon_page.starts_with("/my/coupons/"), "{coupon_page}");
    let code: String = db
        .client()
        .await
        .query_one("SELECT code FROM coupons", &[])
        .await
        .unwrap()
        .get(0);

    // Redeem by the API, then the refusals that carry the code in their path.
    let redeem = |code: String| {
        api(client
            .post(site.url(&format!("/api/v1/coupons/{code}/redemptions")))
            .json(&json!({})))
    };
    assert_eq!(redeem(code.clone()).await.unwrap().status(), 201);
    assert_eq!(redeem(code.clone()).await.unwrap().status(), 409);
    // The same code with its last character changed (to another one codes use).
    let other = if code.ends_with('Z') { 'Y' } else { 'Z' };
    let lookalike = format!("{}{other}", &code[..code.len() - 1]);
    let res = api(client.get(site.url(&format!("/api/v1/coupons/{lookalike}"))))
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let res = client
        .get(site.url(&format!("/api/v1/coupons/{code}")))
        .bearer_auth("wrong-key")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // A console sign-in with the owner's password.
    let console = html_client(None);
    let (_, form) = page(&console, &site.url("/merchant/login")).await;
    let res = console
        .post(site.url("/merchant/login"))
        .form(&[
            ("email", "owner@demo.example"),
            ("password", password.as_str()),
            ("csrf", csrf_of(&form).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The owner picks a new password (asked at first sign-in), then makes an API key on
    // the console's keys page: its secret is on that page and must reach no log.
    let new_password = "tangerine lanterns drift over kyoto";
    let (_, form) = page(&console, &site.url("/merchant/password")).await;
    let res = console
        .post(site.url("/merchant/password"))
        .form(&[
            ("current", password.as_str()),
            ("new", new_password),
            ("confirm", new_password),
            ("csrf", csrf_of(&form).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let (status, keys) = page(&console, &site.url("/merchant/keys")).await;
    assert_eq!(status, 200, "{keys}");
    let res = console
        .post(site.url("/merchant/keys"))
        .form(&[
            ("name", "till"),
            ("scopes", "claims:write"),
            ("csrf", csrf_of(&keys).as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let created = res.text().await.unwrap();
    let marker = "id=\"new-key-secret\">";
    let at = created.find(marker).expect("the new key is shown") + marker.len();
    let console_key = created[at..].split('<').next().unwrap().to_string();
    assert!(console_key.starts_with("eck_"), "{console_key}");

    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(server.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(server.wait().unwrap().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    let out = std::fs::read_to_string(&out_path).unwrap();
    // The log is really there, at debug. (A request writes little of its own at debug
    // since handlebars' render traces, which carried whole pages' data, are capped.)
    assert!(log.contains("\"level\":\"DEBUG\""), "{log}");
    assert!(log.lines().count() > 10, "{log}");
    for (what, secret) in [
        ("coupon code", code.as_str()),
        ("look-alike code", lookalike.as_str()),
        ("OIDC code", oidc_code.as_str()),
        ("OIDC state", oidc_state.as_str()),
        ("sign-in completion token", complete_token.as_str()),
        ("consumer CSRF token", csrf.as_str()),
        ("API key", api_key.as_str()),
        ("API key made in the console", console_key.as_str()),
        ("new owner password", new_password),
        ("owner password", password.as_str()),
        ("client secret", GOOGLE_SECRET),
    ] {
        assert!(secret.len() >= 6, "{what}: {secret:?}");
        let found = log.lines().find(|l| l.contains(secret));
        assert!(found.is_none(), "the {what} is in the log: {found:?}");
        assert!(!out.contains(secret), "the {what} is on stdout: {out}");
    }
    // The code is also absent in the form a coupon code may be typed in (lower case).
    assert!(!log.contains(&code.to_lowercase()));
    let _ = std::fs::remove_dir_all(&data);
}
