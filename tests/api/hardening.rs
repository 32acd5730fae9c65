//! What a security review asked for (issue 14): headers, slow clients, body limits, rate
//! limits on every public URL (IPv6 by /64), safe `/readyz` and `/metrics`, cached images
//! with replaced ones deleted, consumer sign-out and the `__Host-` session cookie.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::console_campaigns::png_bytes;
use crate::helpers::{
    csrf_of, error_code, fresh_database, html_client, location, page, spawn_app, spawn_app_on,
    test_settings, TestApp,
};

async fn app_with(tweak: impl FnOnce(&mut ecoupon::config::Settings) + 'static) -> TestApp {
    spawn_app_on(fresh_database().await, move |db| {
        let mut s = test_settings(db);
        tweak(&mut s);
        s
    })
    .await
}

fn addr(app: &TestApp) -> String {
    app.address.trim_start_matches("http://").to_string()
}

#[actix_web::test]
async fn every_answer_carries_the_browser_policies() {
    let app = spawn_app().await;
    for path in ["/", "/livez", "/no/such/page"] {
        let res = app.client.get(app.url(path)).send().await.unwrap();
        let h = res.headers();
        let policy = h["permissions-policy"].to_str().unwrap();
        assert!(policy.contains("camera=(self)"), "{path}: {policy}");
        assert!(policy.contains("geolocation=()"), "{path}: {policy}");
        assert!(policy.contains("microphone=()"), "{path}: {policy}");
        assert_eq!(h["cross-origin-opener-policy"], "same-origin", "{path}");
        assert_eq!(h["x-content-type-options"], "nosniff", "{path}");
        assert_eq!(h["x-frame-options"], "DENY", "{path}");
        assert!(h.contains_key("content-security-policy"), "{path}");
    }
}

/// Reads until the server closes the connection (or 20 s pass): what it sent.
fn read_to_close(stream: &mut TcpStream) -> (String, Duration) {
    let started = Instant::now();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the server kept the connection open past 20 s: {e}"),
        }
    }
    (
        String::from_utf8_lossy(&got).into_owned(),
        started.elapsed(),
    )
}

/// Sends `bytes` one at a time, a pause between each, until the server closes the
/// connection; returns how many it took before the write failed (or all of them).
fn dribble(stream: &mut TcpStream, bytes: &[u8], pause: Duration) -> usize {
    for (i, b) in bytes.iter().enumerate() {
        if stream.write_all(&[*b]).is_err() {
            return i;
        }
        std::thread::sleep(pause);
    }
    bytes.len()
}

#[actix_web::test]
async fn slow_headers_and_slow_bodies_are_cut_off() {
    let app = app_with(|s| {
        s.http.header_timeout = Duration::from_secs(1);
        s.http.body_timeout = Duration::from_secs(2);
    })
    .await;
    let address = addr(&app);

    // Headers at a byte every 300 ms (slowloris): the server answers 408 and closes.
    let headers = tokio::task::spawn_blocking({
        let address = address.clone();
        move || {
            let mut stream = TcpStream::connect(&address).unwrap();
            let request =
                b"GET /livez HTTP/1.1\r\nHost: x\r\nX-Padding: aaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
            let writer = stream.try_clone().unwrap();
            let sender = std::thread::spawn(move || {
                let mut writer = writer;
                dribble(&mut writer, request, Duration::from_millis(300))
            });
            let (answer, took) = read_to_close(&mut stream);
            let _ = stream.shutdown(std::net::Shutdown::Both);
            let sent = sender.join().unwrap();
            (answer, took, sent, request.len())
        }
    })
    .await
    .unwrap();
    let (answer, took, sent, total) = headers;
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "{answer}"
    );
    assert!(
        sent < total,
        "the whole request went through at a byte per 300 ms"
    );
    assert!(took < Duration::from_secs(10), "{took:?}");

    // A body announced as 1000 bytes, sent a byte every 200 ms: cut off after the body
    // timeout with an error answer, long before the body could have arrived (200 s).
    let body = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(&address).unwrap();
        stream
            .write_all(
                b"POST /api/v1/campaigns HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{\"name\":\"",
            )
            .unwrap();
        let writer = stream.try_clone().unwrap();
        std::thread::spawn(move || {
            let mut writer = writer;
            dribble(&mut writer, &[b'a'; 990], Duration::from_millis(200))
        });
        read_to_close(&mut stream)
    })
    .await
    .unwrap();
    let (answer, took) = body;
    assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
    assert!(took < Duration::from_secs(30), "{took:?}");
    // The server is fine afterwards.
    let res = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn body_json_depth_and_form_limits_hold() {
    let app = spawn_app().await;
    // JSON body over 64 KiB.
    let big = json!({"name": "x".repeat(70 * 1024), "total_limit": 1});
    let res = app
        .post("/api/v1/campaigns")
        .json(&big)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "payload_too_large");
    // JSON nested 5,000 deep (under the size limit), where the parser must walk it (a
    // field it skips): refused at serde_json's depth limit, not a stack overflow.
    let deep = format!(
        "{{\"name\":\"x\",\"total_limit\":1,\"extra\":{}{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let res = app
        .post("/api/v1/campaigns")
        .header("content-type", "application/json")
        .body(deep)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(error_code(&body), "invalid_json");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit"),
        "{body}"
    );
    // A url-encoded form over 16 KiB.
    let b = html_client(None);
    let res = b
        .post(app.url("/merchant/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("email=a&password={}&csrf=x", "p".repeat(20 * 1024)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    assert!(res.text().await.unwrap().contains("payload_too_large"));
    // An upload over the image limit.
    let res = app
        .put("/api/v1/tenant/logo")
        .body(vec![0u8; 3 * 1024 * 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    // And the server still answers.
    let res = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn public_pages_are_rate_limited_ipv6_by_its_64_and_the_api_is_not() {
    let app = app_with(|s| {
        s.pages.per_ip_per_second = 1; // bursts of 10
        s.pages.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
        s.pages.signin_starts_per_ip_per_minute = 3;
    })
    .await;
    let get_as = |path: &str, ip: &str| {
        app.client
            .get(app.url(path))
            .header("x-forwarded-for", ip)
            .send()
    };
    // Pages beyond /c and /my: the status page, images, sign-in.
    for path in [
        "/status",
        "/i/00000000-0000-0000-0000-000000000000",
        "/auth/signin",
    ] {
        let ip = format!("198.51.100.{}", path.len());
        let mut statuses = Vec::new();
        for _ in 0..12 {
            statuses.push(get_as(path, &ip).await.unwrap().status().as_u16());
        }
        assert_eq!(statuses.last(), Some(&429), "{path}: {statuses:?}");
    }
    // Addresses in one IPv6 /64 share a bucket; the next /64 has its own.
    let mut last = 0;
    for i in 0..12 {
        last = get_as("/status", &format!("2001:db8:1:2::{:x}", i + 1))
            .await
            .unwrap()
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    let other = get_as("/status", "2001:db8:1:3::1").await.unwrap();
    assert_eq!(other.status(), 200);
    // A forged entry left of the proxy's is not the client: the bucket is the real one.
    let forged = app
        .client
        .get(app.url("/status"))
        .header("x-forwarded-for", "203.0.113.77, 2001:db8:1:2::99")
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 429);
    // Unreadable: the peer's own bucket (127.0.0.1, still fresh), never "no check".
    let res = get_as("/status", "not-an-address").await.unwrap();
    assert_eq!(res.status(), 200);
    // The API is keyed by API key, not limited per address.
    for _ in 0..30 {
        let res = app.get("/api/v1/tenant").send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    // Sign-in starts are a stored row each: a few a minute per address.
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = get_as("/auth/nobody/start?return_to=/", "192.0.2.200")
            .await
            .unwrap();
        statuses.push(res.status().as_u16());
    }
    assert_eq!(statuses, [404, 404, 404, 429]);
}

#[actix_web::test]
async fn readyz_names_no_database_detail_and_metrics_stay_on_this_host() {
    let app = spawn_app().await;
    let name: String = app.db_value("SELECT current_database()", &[]).await;
    // From another database of the server: one cannot lock out the database one is in.
    let url = app
        .db
        .url
        .replace(&format!("dbname={name}"), "dbname=postgres");
    assert_ne!(url, app.db.url);
    let (admin, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    actix_web::rt::spawn(conn);
    admin
        .execute(
            &format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS false"),
            &[],
        )
        .await
        .unwrap();
    admin
        .execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1",
            &[&name],
        )
        .await
        .unwrap();
    let res = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    let text = res.text().await.unwrap();
    admin
        .execute(
            &format!("ALTER DATABASE \"{name}\" ALLOW_CONNECTIONS true"),
            &[],
        )
        .await
        .unwrap();
    assert!(text.contains("not_ready"), "{text}");
    assert!(text.contains("the database is unavailable"), "{text}");
    assert!(!text.contains(&name), "{text}");
    assert!(!text.contains("connections"), "{text}");

    // /metrics: to a scraper on this host, not through a proxy.
    let res = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    for (h, v) in [
        ("x-forwarded-for", "203.0.113.5"),
        ("forwarded", "for=203.0.113.5"),
        ("x-real-ip", "203.0.113.5"),
    ] {
        let res = app
            .client
            .get(app.url("/metrics"))
            .header(h, v)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{h}");
    }
}

#[actix_web::test]
async fn images_are_cached_by_etag_and_replaced_ones_are_deleted() {
    let app = spawn_app().await;
    let put = |path: &'static str| {
        app.put(path)
            .header("content-type", "image/png")
            .body(png_bytes())
            .send()
    };
    let first: serde_json::Value = put("/api/v1/tenant/logo")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first = first["logo_url"].as_str().unwrap().to_string();
    let res = app.client.get(app.url(&first)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let etag = res.headers()["etag"].to_str().unwrap().to_string();
    assert_eq!(
        res.headers()["cache-control"],
        "public, max-age=31536000, immutable"
    );
    assert_eq!(res.bytes().await.unwrap().as_ref(), png_bytes().as_slice());
    let res = app
        .client
        .get(app.url(&first))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 304);
    assert!(res.bytes().await.unwrap().is_empty());

    let id: uuid::Uuid = first.trim_start_matches("/i/").parse().unwrap();
    // A replacement deletes the old logo, and this node forgets it at once.
    let second: serde_json::Value = put("/api/v1/tenant/logo")
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = second["logo_url"].as_str().unwrap().to_string();
    assert_ne!(first, second);
    let left: i64 = app
        .db_value("SELECT count(*) FROM images WHERE id = $1", &[&id])
        .await;
    assert_eq!(left, 0);
    let res = app.client.get(app.url(&first)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = app
        .client
        .get(app.url(&first))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404, "a deleted image is not 'not modified'");

    // The same for a campaign's picture.
    let campaign = app
        .create_campaign_id(json!({"name": "Pictured", "total_limit": 5}))
        .await;
    let path: &'static str =
        Box::leak(format!("/api/v1/campaigns/{campaign}/image").into_boxed_str());
    let a: serde_json::Value = put(path).await.unwrap().json().await.unwrap();
    let b: serde_json::Value = put(path).await.unwrap().json().await.unwrap();
    assert_ne!(a["image_url"], b["image_url"]);
    let images: i64 = app
        .db_value(
            "SELECT count(*) FROM images WHERE tenant_id = $1",
            &[&app.tenant_id],
        )
        .await;
    assert_eq!(images, 2, "one logo and one campaign picture are left");
}

/// The session cookie under TLS (an https public URL): `__Host-`, Secure, a max-age of the
/// session lifetime (not 400 days); sign-out clears it.
#[actix_web::test]
async fn the_session_cookie_expires_has_the_host_prefix_under_tls_and_signs_out() {
    let app = app_with(|s| {
        s.public_url = Some("https://coupons.example".into());
        s.pages.session_lifetime = Duration::from_secs(7 * 86_400);
    })
    .await;
    let b = html_client(None);
    let res = b.get(app.url("/my")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.contains("ecoupon_session="))
        .unwrap();
    assert!(cookie.starts_with("__Host-ecoupon_session="), "{cookie}");
    for part in ["Secure", "HttpOnly", "Path=/", "SameSite=Lax"] {
        assert!(cookie.contains(part), "{part}: {cookie}");
    }
    assert!(!cookie.contains("Domain"), "{cookie}");
    let max_age: i64 = cookie
        .split("; ")
        .find_map(|p| p.strip_prefix("Max-Age="))
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (7 * 86_400 - 60..=7 * 86_400).contains(&max_age),
        "{cookie}"
    );

    // Sign-out without TLS (this client would not send a Secure cookie over http).
    let app = spawn_app().await;
    let campaign = app
        .create_campaign(json!({"name": "Open", "total_limit": 5, "status": "active"}))
        .await;
    let b = html_client(None);
    let (_, html) = page(
        &b,
        &app.url(&format!("/c/{}", campaign["slug"].as_str().unwrap())),
    )
    .await;
    let csrf = csrf_of(&html);
    let me: serde_json::Value = b
        .get(app.url("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let device = me["consumer"].as_str().unwrap().to_string();
    // Another site's post (no token) is refused and changes nothing.
    let res = b
        .post(app.url("/auth/signout"))
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = b
        .post(app.url("/auth/signout"))
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{:?}", res.text().await);
    assert_eq!(location(&res), "/");
    let cleared = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("ecoupon_session="))
        .unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let me: serde_json::Value = b
        .get(app.url("/auth/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(me["consumer"].is_null(), "{me} (was {device})");
}
