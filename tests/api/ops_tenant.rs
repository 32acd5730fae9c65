//! Termination: the export archive, the purge (every table with a tenant_id, found through
//! information_schema, keeps no row of the tenant; its images are gone; other tenants are
//! untouched; the audit chain still verifies) and the erasure certificate (verifies
//! offline; one edited byte fails).

use std::io::Read;

use serde_json::json;

use crate::helpers::{scratch_dir, spawn_app, TestApp};
use crate::ops_backup::{ecoupon, fail, succeed};

/// A PNG the image checks accept.
fn png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 2, 2);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().unwrap();
        writer.write_image_data(&[200; 12]).unwrap();
    }
    out
}

async fn populate(app: &TestApp) -> String {
    let id = app
        .create_campaign_id(json!({"name": "Closing sale", "total_limit": 100, "status": "active"}))
        .await;
    for i in 0..5 {
        let (status, body) = app.claim(&id, &format!("member-{i}")).await;
        assert_eq!(status, 201, "{body}");
    }
    let (_, body) = app.claim(&id, "member-9").await;
    let code = body["coupon"]["code"].as_str().unwrap().to_string();
    let (status, body) = app.redeem(&code, json!({"store": "Shibuya"})).await;
    assert_eq!(status, 201, "{body}");
    let res = app
        .put(&format!("/api/v1/campaigns/{id}/image"))
        .header("content-type", "image/png")
        .body(png())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO audit_log (tenant_id, actor, action, target, ip)
             VALUES ($1, 'owner@test.example', 'test.before_purge', 'x', '192.0.2.4')",
            &[&app.tenant_id],
        )
        .await
        .unwrap();
    id
}

async fn tenant_tables(app: &TestApp) -> Vec<String> {
    app.db
        .client()
        .await
        .query(
            "SELECT table_name::text FROM information_schema.columns
             WHERE table_schema = 'public' AND column_name = 'tenant_id'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn rows_of(app: &TestApp, tenant: uuid::Uuid) -> Vec<(String, i64)> {
    let mut found = Vec::new();
    for table in tenant_tables(app).await {
        let n: i64 = app
            .db_value(
                &format!("SELECT count(*) FROM {table} WHERE tenant_id = $1"),
                &[&tenant],
            )
            .await;
        found.push((table, n));
    }
    let n: i64 = app
        .db_value("SELECT count(*) FROM tenants WHERE id = $1", &[&tenant])
        .await;
    found.push(("tenants".into(), n));
    found
}

#[actix_web::test]
async fn export_writes_one_archive_with_a_csv_per_table_and_the_images() {
    let app = spawn_app().await;
    populate(&app).await;
    let (data, out_dir) = (scratch_dir("data"), scratch_dir("export"));
    let out = out_dir.join("export.tar.gz");
    let printed = succeed(
        ecoupon(Some(&app.db.url), &data)
            .args(["tenant", "export", &app.tenant_id.to_string(), "--out"])
            .arg(&out),
    );
    assert_eq!(printed.trim(), out.display().to_string());
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(
        std::fs::File::open(&out).unwrap(),
    ));
    let mut entries = std::collections::BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().display().to_string();
        let mut bytes = Vec::new();
        entry.read_to_end(&mut bytes).unwrap();
        entries.insert(path, bytes);
    }
    let root = format!("ecoupon-export-{}", app.tenant_id);
    for table in tenant_tables(&app).await {
        assert!(
            entries.contains_key(&format!("{root}/tables/{table}.csv")),
            "{table} missing: {:?}",
            entries.keys()
        );
    }
    let coupons =
        String::from_utf8(entries[&format!("{root}/tables/coupons.csv")].clone()).unwrap();
    assert_eq!(coupons.lines().count(), 1 + 6, "{coupons}");
    assert!(
        coupons.starts_with("id,tenant_id,campaign_id,consumer"),
        "{coupons}"
    );
    assert!(
        !coupons.contains(",secret"),
        "per-coupon keys are withheld: {coupons}"
    );
    let users =
        String::from_utf8(entries[&format!("{root}/tables/merchant_users.csv")].clone()).unwrap();
    assert!(
        !users.contains("password_hash") && !users.contains("$argon2"),
        "{users}"
    );
    let images: Vec<_> = entries.keys().filter(|k| k.contains("/images/")).collect();
    assert_eq!(images.len(), 1, "{:?}", entries.keys());
    assert_eq!(entries[images[0]], png());
    let manifest: serde_json::Value =
        serde_json::from_slice(&entries[&format!("{root}/manifest.json")]).unwrap();
    assert_eq!(
        manifest["files"]["tables/coupons.csv"]["rows"], 6,
        "{manifest}"
    );

    let line = fail(ecoupon(Some(&app.db.url), &data).args([
        "tenant",
        "export",
        &uuid::Uuid::new_v4().to_string(),
    ]));
    assert!(line.contains("no tenant"), "{line}");
}

#[actix_web::test]
async fn purge_removes_every_row_and_file_and_writes_a_certificate_that_verifies() {
    let app = spawn_app().await;
    populate(&app).await;
    let data = scratch_dir("data");
    let certs = scratch_dir("certs");
    // Another tenant on the same database must be untouched.
    let other = succeed(ecoupon(Some(&app.db.url), &data).args([
        "tenant",
        "create",
        "--name",
        "Neighbour",
        "--owner-email",
        "n@test.example",
        "--json",
    ]));
    let other: serde_json::Value = serde_json::from_str(&other).unwrap();
    let other_id: uuid::Uuid = other["tenant_id"].as_str().unwrap().parse().unwrap();
    let other_before = rows_of(&app, other_id).await;
    let name: String = app
        .db_value("SELECT name FROM tenants WHERE id = $1", &[&app.tenant_id])
        .await;
    let tenant = app.tenant_id.to_string();

    let line = fail(ecoupon(Some(&app.db.url), &data).args([
        "tenant",
        "purge",
        &tenant,
        "--confirm",
        "wrong name",
    ]));
    assert!(line.contains("--confirm"), "{line}");
    assert!(rows_of(&app, app.tenant_id)
        .await
        .iter()
        .any(|(_, n)| *n > 0));

    let out = succeed(
        ecoupon(Some(&app.db.url), &data)
            .args([
                "tenant",
                "purge",
                &tenant,
                "--confirm",
                &name,
                "--operator",
                "ops@example.jp",
            ])
            .arg("--certificate-dir")
            .arg(&certs),
    );
    assert!(out.contains("purged tenant"), "{out}");
    for (table, n) in rows_of(&app, app.tenant_id).await {
        assert_eq!(n, 0, "{table} still holds rows of the purged tenant");
    }
    let leases: i64 = app
        .db_value(
            "SELECT count(*) FROM campaign_leases l WHERE NOT EXISTS (SELECT 1 FROM campaigns c WHERE c.id = l.campaign_id)",
            &[],
        )
        .await;
    assert_eq!(leases, 0);
    let images: i64 = app.db_value("SELECT count(*) FROM images", &[]).await;
    assert_eq!(images, 0, "the uploaded image is gone");
    let erased: String = app
        .db_value(
            "SELECT string_agg(actor || target || ip, '') FROM audit_log WHERE erased_at IS NOT NULL",
            &[],
        )
        .await;
    assert_eq!(erased, "", "erased entries keep no content");
    assert_eq!(rows_of(&app, other_id).await, other_before);
    let verified = succeed(ecoupon(Some(&app.db.url), &data).args(["audit", "verify"]));
    assert!(
        verified.contains("intact") && verified.contains("erased by tenant purges"),
        "{verified}"
    );

    // The certificate: JSON and HTML, valid offline, and invalid after any one-byte edit.
    let json_path = out
        .lines()
        .find_map(|l| l.strip_prefix("certificate: "))
        .unwrap()
        .trim()
        .to_string();
    let html_path = json_path.replace(".json", ".html");
    let html = std::fs::read_to_string(&html_path).unwrap();
    assert!(
        html.contains(&name) && html.contains("ops@example.jp"),
        "{html}"
    );
    let text = std::fs::read_to_string(&json_path).unwrap();
    let cert: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(cert["tenant_id"], tenant);
    assert_eq!(cert["operator"], "ops@example.jp");
    assert_eq!(cert["rows_removed"]["coupons"], 6, "{cert}");
    assert_eq!(cert["rows_removed"]["redemptions"], 1, "{cert}");
    assert_eq!(cert["files_removed"], 1, "{cert}");
    let ok = succeed(ecoupon(None, &data).args(["certificate", "verify", &json_path]));
    assert!(ok.starts_with("valid:"), "{ok}");
    let key = cert["public_key"].as_str().unwrap();
    succeed(ecoupon(None, &data).args(["certificate", "verify", &json_path, "--public-key", key]));
    let line = fail(ecoupon(None, &data).args([
        "certificate",
        "verify",
        &json_path,
        "--public-key",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
    ]));
    assert!(line.contains("not the expected"), "{line}");

    let edited = std::env::temp_dir().join(format!("cert-{}.json", uuid::Uuid::new_v4()));
    let count_at = text.find("\"coupons\": 6").unwrap() + "\"coupons\": ".len();
    for (at, byte) in [(count_at, b'7'), (text.len() - 3, b'x'), (1, b' ')] {
        let mut bytes = text.clone().into_bytes();
        bytes[at] = byte;
        std::fs::write(&edited, &bytes).unwrap();
        let line = fail(
            ecoupon(None, &data)
                .args(["certificate", "verify"])
                .arg(&edited),
        );
        assert!(line.contains("NOT valid"), "{line}");
    }
}
