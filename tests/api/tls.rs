//! Built-in TLS with certificates made here (rcgen): https with HSTS, the plain-HTTP
//! listener that redirects, and a SIGHUP that swaps the certificate for new connections
//! while an open one carries on.

use std::path::Path;
use std::time::Duration;

use ecoupon::config::TlsSettings;

use crate::helpers::{eventually, fresh_database, scratch_dir, spawn_app_on, test_settings};

const HOST: &str = "ecoupon.test";

/// A self-signed certificate for [`HOST`], written to `dir`: its PEM.
fn make_cert(dir: &Path) -> String {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec![HOST.to_string()]).unwrap();
    std::fs::write(dir.join("cert.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("key.pem"), signing_key.serialize_pem()).unwrap();
    cert.pem()
}

/// A client that trusts only `pem` and finds [`HOST`] at `port`.
fn client_trusting(pem: &str, port: u16) -> reqwest::Client {
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).unwrap())
        .resolve(HOST, ([127, 0, 0, 1], port).into())
        .redirect(reqwest::redirect::Policy::none())
        .pool_idle_timeout(Duration::from_secs(120))
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

#[actix_web::test]
async fn https_with_hsts_a_redirecting_listener_and_reload_on_sighup() {
    // Listen for SIGHUP here first, so the signal can never meet the default action
    // (which would end the test process) before the server's own handler is in place.
    let mut hangups =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).unwrap();
    let dir = scratch_dir("tls");
    let first = make_cert(&dir);
    let tls = TlsSettings {
        cert: dir.join("cert.pem"),
        key: dir.join("key.pem"),
        redirect_listen: Some("127.0.0.1:0".parse().unwrap()),
        hsts_max_age: Duration::from_secs(86_400),
    };
    let app = spawn_app_on(fresh_database().await, move |db| {
        let mut s = test_settings(db);
        s.tls = Some(tls);
        s.public_url = Some(format!("https://{HOST}"));
        s.http.keep_alive = Duration::from_secs(120);
        s
    })
    .await;
    let port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let url = |path: &str| format!("https://{HOST}:{port}{path}");

    let a = client_trusting(&first, port);
    let res = a.get(url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.version(), reqwest::Version::HTTP_11);
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=86400; includeSubDomains"
    );
    // Plain HTTP on the TLS port gets no page.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{port}/livez"))
        .send()
        .await;
    assert!(plain.map(|r| r.status() != 200).unwrap_or(true));
    // The redirecting listener: every path to the same path on the https public URL.
    let redirect_port = app.redirect_port.expect("tls.redirect_listen is served");
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("http://127.0.0.1:{redirect_port}/c/abc?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 308);
    assert_eq!(
        res.headers()["location"],
        format!("https://{HOST}/c/abc?x=1")
    );

    // A new certificate and SIGHUP: new connections get it, the open one carries on.
    let second = make_cert(&dir);
    nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGHUP).unwrap();
    hangups.recv().await;
    eventually(
        Duration::from_secs(10),
        "the new certificate is served",
        async || {
            let b = client_trusting(&second, port);
            let res = b.get(url("/livez")).send().await.ok()?;
            (res.status() == 200).then_some(())
        },
    )
    .await;
    let fresh_with_old_trust = client_trusting(&first, port);
    assert!(
        fresh_with_old_trust
            .get(url("/livez"))
            .send()
            .await
            .is_err(),
        "a new connection is not offered the old certificate"
    );
    // Client `a` trusts only the first certificate, so it succeeds only on its old
    // connection: the reload dropped nothing.
    let res = a.get(url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // A broken pair on SIGHUP is refused and the current one kept.
    std::fs::write(dir.join("key.pem"), "not a key").unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::this(), nix::sys::signal::Signal::SIGHUP).unwrap();
    hangups.recv().await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let b = client_trusting(&second, port);
    assert_eq!(b.get(url("/livez")).send().await.unwrap().status(), 200);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_missing_or_mismatched_key_stops_start_up_naming_the_file() {
    let dir = scratch_dir("tls-bad");
    make_cert(&dir);
    let cert_pem = std::fs::read_to_string(dir.join("cert.pem")).unwrap();
    let settings = |key: &str| TlsSettings {
        cert: dir.join("cert.pem"),
        key: dir.join(key),
        redirect_listen: None,
        hsts_max_age: Duration::from_secs(0),
    };
    let err = ecoupon::tls::CertStore::load(&settings("absent.pem")).unwrap_err();
    assert!(
        err.to_string().contains("tls.key") && err.to_string().contains("absent.pem"),
        "{err}"
    );
    // Another certificate's key.
    let other = scratch_dir("tls-other");
    make_cert(&other);
    std::fs::copy(other.join("key.pem"), dir.join("other-key.pem")).unwrap();
    let err = ecoupon::tls::CertStore::load(&settings("other-key.pem")).unwrap_err();
    assert!(err.to_string().contains("does not belong"), "{err}");
    assert!(!cert_pem.is_empty());
}
