//! Every body limit, each tested where `hardening.rs` does not already: JSON and
//! url-encoded bodies sent chunked (no Content-Length, so the limit must count what
//! arrives), the CSV import's own larger limit, and the console editor's multipart form
//! (one field too big, too many parts). Each answer is a 413 with the stable code, and the
//! server goes on answering.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::json;

use crate::console_campaigns::{good_form, post_editor};
use crate::helpers::{spawn_app, TestApp};

/// Sends `body` chunked (4 KiB chunks, no Content-Length) over a raw connection; returns
/// the status and the body of the answer. The server may answer and close before the
/// whole body is sent: a write error after that is expected, and the answer is read as it
/// comes (by another thread), before the reset that writing to a closed socket brings.
/// Blocking I/O, off the runtime the in-process server runs on.
async fn send_chunked(
    app: &TestApp,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> (u16, String) {
    let address = app.address.trim_start_matches("http://").to_string();
    let path = path.to_string();
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let body = body.to_vec();
    tokio::task::spawn_blocking(move || send_chunked_blocking(&address, &path, &headers, &body))
        .await
        .unwrap()
}

fn send_chunked_blocking(
    address: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> (u16, String) {
    let mut s = TcpStream::connect(address).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut reading = s.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut answer = Vec::new();
        let _ = reading.read_to_end(&mut answer);
        answer
    });
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes()).unwrap();
    let mut sent = true;
    for chunk in body.chunks(4096) {
        let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
        if s.write_all(&framed).is_err() {
            sent = false;
            break;
        }
    }
    if sent {
        let _ = s.write_all(b"0\r\n\r\n");
    }
    let answer = reader.join().unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP answer to {path}: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string();
    (status, body)
}

#[actix_web::test]
async fn chunked_json_and_form_bodies_are_held_to_their_limits() {
    let app = spawn_app().await;
    let auth = format!("Bearer {}", app.api_key);
    let big = json!({"name": "x".repeat(70 * 1024), "total_limit": 1}).to_string();
    let (status, body) = send_chunked(
        &app,
        "/api/v1/campaigns",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        big.as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    // Just under the limit it is read (and judged on its content).
    let fits = json!({"name": "x".repeat(60 * 1024), "total_limit": 1}).to_string();
    let (status, body) = send_chunked(
        &app,
        "/api/v1/campaigns",
        &[
            ("Content-Type", "application/json"),
            ("Authorization", &auth),
        ],
        fits.as_bytes(),
    )
    .await;
    assert_eq!(status, 422, "{body}");

    let form = format!("email=a&password={}&csrf=x", "p".repeat(20 * 1024));
    let (status, body) = send_chunked(
        &app,
        "/merchant/login",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    assert!(body.contains("payload_too_large"), "{body}");
    let res = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[actix_web::test]
async fn a_code_import_over_8_mib_is_refused_unread() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "import", "total_limit": 10, "status": "active"}))
        .await;
    let path = format!("/api/v1/campaigns/{id}/codes/import");
    // 9 MiB of well-formed lines: refused for its size, whatever it holds.
    let line = "ABCDEFGHJKLMNPQRSTUV\n";
    let csv = line.repeat((9 << 20) / line.len());
    let res = app
        .post(&path)
        .header("content-type", "text/csv")
        .body(csv.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let auth = format!("Bearer {}", app.api_key);
    let (status, body) = send_chunked(
        &app,
        &path,
        &[("Content-Type", "text/csv"), ("Authorization", &auth)],
        csv.as_bytes(),
    )
    .await;
    assert_eq!(status, 413, "{body}");
    // The server still takes a small import.
    let res = app
        .post(&path)
        .header("content-type", "text/csv")
        .body("code\nABCDEF12\n")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
}

#[actix_web::test]
async fn the_campaign_editor_refuses_a_huge_field_and_too_many_parts() {
    let app = spawn_app().await;
    let (_, browser) = app.console_user("owner").await;
    let campaigns = async || -> i64 {
        app.db_value(
            "SELECT count(*) FROM campaigns WHERE tenant_id = $1",
            &[&app.tenant_id],
        )
        .await
    };
    let before = campaigns().await;
    let post = async |fields: &[(&str, &str)]| {
        let res = post_editor(
            &app,
            &browser,
            "/merchant/campaigns/new",
            "/merchant/campaigns",
            fields,
            None,
        )
        .await;
        let status = res.status().as_u16();
        (status, res.text().await.unwrap())
    };
    // A description of 70 KiB: no browser sends that for a text field.
    let huge = "説".repeat(24 * 1024);
    let (status, body) = post(&good_form(&[("description", &huge)])).await;
    assert_eq!(status, 413, "{}", &body[..body.len().min(300)]);
    // 80 parts (the editor has about 20 fields).
    let names: Vec<String> = (0..80).map(|i| format!("extra{i}")).collect();
    let mut many = good_form(&[]);
    many.extend(names.iter().map(|n| (n.as_str(), "x")));
    let (status, body) = post(&many).await;
    assert_eq!(status, 413, "{}", &body[..body.len().min(300)]);
    // Nothing was made, and a good form still is.
    assert_eq!(campaigns().await, before);
    let (status, _) = post(&good_form(&[])).await;
    assert_eq!(status, 303);
    assert_eq!(campaigns().await, before + 1);
    let res = app.client.get(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}
