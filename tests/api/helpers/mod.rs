//! zero2prod-style harness: [`spawn_app`] starts the real server on port 0 against a fresh
//! database cloned from a migrated template. With `DATABASE_URL` set, databases are made on
//! that server; without it, on a private cluster started by the product's own code.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use ecoupon::config::Settings;
use ecoupon::domain::tenant::{Email, NewTenant, TenantName};
use ecoupon::private_cluster::EmbeddedPostgres;
use ecoupon::startup::Application;
use ecoupon::store::{run_migrations, Store};
use tokio::sync::OnceCell;
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;
use uuid::Uuid;

mod browser;
mod openapi;
pub use browser::{browser, chromedriver};
pub use openapi::OpenApiCheck;

pub struct TestApp {
    pub address: String,
    pub api_key: String,
    pub tenant_id: Uuid,
    pub db: TestDatabase,
    pub client: reqwest::Client,
    pub engine: ecoupon::engine::Engine,
    /// The port of `tls.redirect_listen`, when the settings set one.
    pub redirect_port: Option<u16>,
    handle: ecoupon::startup::AppHandle,
}

impl TestApp {
    /// The first column of the one row `sql` returns (a count, a flag, an id …).
    pub async fn db_value<T: for<'a> tokio_postgres::types::FromSql<'a>>(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> T {
        self.db
            .client()
            .await
            .query_one(sql, params)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .get(0)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.get(self.url(path)).bearer_auth(&self.api_key)
    }

    pub fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.post(self.url(path)).bearer_auth(&self.api_key)
    }

    pub fn patch(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.patch(self.url(path)).bearer_auth(&self.api_key)
    }

    pub fn put(&self, path: &str) -> reqwest::RequestBuilder {
        self.client.put(self.url(path)).bearer_auth(&self.api_key)
    }

    pub fn delete(&self, path: &str) -> reqwest::RequestBuilder {
        self.client
            .delete(self.url(path))
            .bearer_auth(&self.api_key)
    }

    /// Creates a campaign through the API and returns its JSON.
    pub async fn create_campaign(&self, body: serde_json::Value) -> serde_json::Value {
        let (status, created) = self.try_create_campaign(body).await;
        assert_eq!(status, 201, "{created}");
        created
    }

    /// Creates a campaign through the API and returns its id.
    pub async fn create_campaign_id(&self, body: serde_json::Value) -> String {
        let created = self.create_campaign(body).await;
        created["id"].as_str().unwrap().to_string()
    }

    /// Asks to create a campaign: (status, body), whatever the answer.
    pub async fn try_create_campaign(&self, body: serde_json::Value) -> (u16, serde_json::Value) {
        let res = self
            .post("/api/v1/campaigns")
            .json(&body)
            .send()
            .await
            .unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or_default())
    }

    /// Claims and returns (status, body).
    pub async fn claim(&self, campaign_id: &str, consumer: &str) -> (u16, serde_json::Value) {
        claim_with(self, &self.api_key, campaign_id, consumer).await
    }

    pub async fn redeem(&self, code: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        let res = self
            .post(&format!("/api/v1/coupons/{code}/redemptions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        (status, res.json().await.unwrap_or_default())
    }

    /// Stops the server as SIGTERM would: in-flight requests finish first.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// A fresh database for one test.
#[derive(Clone)]
pub struct TestDatabase {
    pub url: String,
    _drop: std::sync::Arc<DropDatabase>,
}

impl TestDatabase {
    /// A database this harness did not create (on a private cluster a test runs and
    /// restarts itself): nothing is dropped when the last handle goes.
    pub fn external(url: String) -> TestDatabase {
        TestDatabase {
            url,
            _drop: std::sync::Arc::new(DropDatabase(String::new())),
        }
    }

    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.url, NoTls)
            .await
            .expect("connect to test database");
        tokio::spawn(conn);
        client
    }
}

pub fn test_settings(db: &TestDatabase) -> Settings {
    let mut settings = Settings {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: Some(db.url.clone()),
        demo: false,
        data_dir: scratch_dir("data"),
        ..Settings::default()
    };
    settings.database.pool_size = 8;
    settings.log.level = std::env::var("TEST_LOG").unwrap_or_else(|_| "error".into());
    settings
}

pub async fn spawn_app() -> TestApp {
    let db = fresh_database().await;
    spawn_app_on(db, test_settings).await
}

/// Starts an app on an existing database: two of these on one database are two nodes.
pub async fn spawn_app_on(
    db: TestDatabase,
    tweak: impl FnOnce(&TestDatabase) -> Settings,
) -> TestApp {
    let settings = tweak(&db);
    ecoupon::telemetry::init(&settings.log);
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let tenant = NewTenant::generate(
        TenantName::parse(&format!("Test {}", &Uuid::new_v4().to_string()[..8])).unwrap(),
        Email::parse("owner@test.example").unwrap(),
    );
    app.store()
        .insert_tenant(&tenant)
        .await
        .expect("tenant created");
    let port = app.port();
    let redirect_port = app.redirect_port();
    let handle = app.handle();
    let engine = app.engine().clone();
    actix_web::rt::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        api_key: tenant.api_key.plaintext.clone(),
        tenant_id: tenant.id,
        db,
        client: reqwest::Client::builder()
            .pool_idle_timeout(Duration::from_secs(2))
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap(),
        engine,
        redirect_port,
        handle,
    }
}

pub fn scratch_dir(kind: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ecoupon-test-{kind}-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The server tests create databases on, and how to reach it.
struct TestServer {
    admin: tokio_postgres::Config,
}

static SERVER: OnceCell<TestServer> = OnceCell::const_new();

async fn server() -> &'static TestServer {
    SERVER
        .get_or_init(|| async {
            let admin = match std::env::var("DATABASE_URL") {
                Ok(url) => url.parse().expect("DATABASE_URL parses"),
                Err(_) => {
                    // Shared by every test process of this user; the product's own code starts it.
                    let root = std::env::temp_dir()
                        .join(format!("ecoupon-test-pg-{}", nix::unistd::geteuid()));
                    let cluster = EmbeddedPostgres::start(&root)
                        .await
                        .expect("private test cluster starts");
                    cluster.connect_config("postgres")
                }
            };
            TestServer { admin }
        })
        .await
}

async fn admin_client() -> tokio_postgres::Client {
    let (client, conn) = server()
        .await
        .admin
        .connect(NoTls)
        .await
        .expect("connect to the test server");
    tokio::spawn(conn);
    client
}

/// An empty database with no schema at all (for testing migrations themselves).
pub async fn empty_database() -> TestDatabase {
    let name = format!("ecoupon_test_{}", Uuid::new_v4().simple());
    admin_client()
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .expect("create database");
    database_named(name).await
}

/// A migrated database, cloned from a template that is built once per schema version.
pub async fn fresh_database() -> TestDatabase {
    let template = ensure_template().await;
    let name = format!("ecoupon_test_{}", Uuid::new_v4().simple());
    let admin = admin_client().await;
    let sql = format!("CREATE DATABASE {name} TEMPLATE {template}");
    // "source database is being accessed by other users" while a clone is in progress.
    retry(|| admin.batch_execute(&sql)).await;
    database_named(name).await
}

async fn database_named(name: String) -> TestDatabase {
    let mut config = server().await.admin.clone();
    config.dbname(&name);
    TestDatabase {
        url: to_conninfo(&config),
        _drop: std::sync::Arc::new(DropDatabase(name)),
    }
}

async fn ensure_template() -> String {
    static TEMPLATE: OnceCell<String> = OnceCell::const_new();
    TEMPLATE
        .get_or_init(|| async {
            let template = format!("ecoupon_tpl_{}", migrations_fingerprint());
            let admin = admin_client().await;
            // Test processes run in parallel; the first builds the template, the rest wait.
            admin
                .execute("SELECT pg_advisory_lock(7215)", &[])
                .await
                .unwrap();
            let exists = admin
                .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&template])
                .await
                .unwrap()
                .is_some();
            if !exists {
                let building = format!("{template}_building");
                admin
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {building}"))
                    .await
                    .unwrap();
                admin
                    .batch_execute(&format!("CREATE DATABASE {building}"))
                    .await
                    .unwrap();
                let mut config = server().await.admin.clone();
                config.dbname(&building);
                let store = Store::connect(config, &Settings::default().database)
                    .await
                    .unwrap();
                run_migrations(&store)
                    .await
                    .expect("migrations apply to the template");
                store.close();
                drop(store);
                // The migration connections may still be closing on the server side.
                let rename = format!("ALTER DATABASE {building} RENAME TO {template}");
                retry(|| admin.batch_execute(&rename)).await;
            }
            admin
                .execute("SELECT pg_advisory_unlock(7215)", &[])
                .await
                .unwrap();
            template
        })
        .await
        .clone()
}

async fn retry<F, Fut>(mut op: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(), tokio_postgres::Error>>,
{
    for attempt in 0.. {
        match op().await {
            Ok(()) => return,
            Err(_) if attempt < 100 => tokio::time::sleep(Duration::from_millis(100)).await,
            Err(e) => panic!("database admin statement keeps failing: {e:?}"),
        }
    }
}

/// Drops the test database when the last handle to it goes.
struct DropDatabase(String);

impl Drop for DropDatabase {
    fn drop(&mut self) {
        let name = self.0.clone();
        if name.is_empty() {
            return;
        }
        let Some(admin) = SERVER.get().map(|s| s.admin.clone()) else {
            return;
        };
        // Drop runs inside the test's runtime, which cannot block on itself: use a thread.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                if let Ok((client, conn)) = admin.connect(NoTls).await {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                        .await;
                }
            });
        })
        .join();
    }
}

/// Changes whenever a migration file changes, so a stale template is never reused.
fn migrations_fingerprint() -> String {
    use sha2::{Digest, Sha256};
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    let mut hasher = Sha256::new();
    for f in files {
        hasher.update(f.file_name().unwrap().to_string_lossy().as_bytes());
        hasher.update(std::fs::read(&f).unwrap());
    }
    hex::encode(&hasher.finalize()[..6])
}

/// libpq key=value form, which `Settings::database_url` accepts.
pub fn to_conninfo(config: &tokio_postgres::Config) -> String {
    let mut parts = Vec::new();
    if let Some(host) = config.get_hosts().first() {
        match host {
            Host::Tcp(h) => parts.push(format!("host={h}")),
            Host::Unix(p) => parts.push(format!("host={}", p.display())),
        }
    }
    if let Some(port) = config.get_ports().first() {
        parts.push(format!("port={port}"));
    }
    if let Some(user) = config.get_user() {
        parts.push(format!("user={user}"));
    }
    if let Some(pw) = config.get_password() {
        parts.push(format!(
            "password='{}'",
            String::from_utf8_lossy(pw).replace('\'', "\\'")
        ));
    }
    if let Some(db) = config.get_dbname() {
        parts.push(format!("dbname={db}"));
    }
    parts.join(" ")
}

/// A test dependency is missing: the test fails (it never skips), saying how to get it.
#[track_caller]
pub fn missing_dependency(what: &str) -> ! {
    panic!("{what}: run .ci/install-deps to install what the tests need")
}

/// The path of an external tool the test needs. Not on PATH, the test fails.
#[track_caller]
pub fn require_tool(name: &str) -> PathBuf {
    let found = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name))
        .find(|p| p.is_file());
    match found {
        Some(path) => path,
        None => missing_dependency(&format!("{name} is not installed (not on PATH)")),
    }
}

/// Polls `check` every 50 ms until it returns `Some`, and returns what it returned. Fails
/// naming `what` if that has not happened by `deadline`. For waiting on a condition, where a
/// fixed sleep would only guess how long it takes.
pub async fn eventually<T>(
    deadline: Duration,
    what: &str,
    mut check: impl AsyncFnMut() -> Option<T>,
) -> T {
    let started = Instant::now();
    loop {
        if let Some(found) = check().await {
            return found;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting until {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The `error.code` of a JSON error body ("" when there is none).
pub fn error_code(body: &serde_json::Value) -> &str {
    body["error"]["code"].as_str().unwrap_or_default()
}

/// A redirect's `Location`.
pub fn location(res: &reqwest::Response) -> &str {
    res.headers()
        .get(reqwest::header::LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
}

/// A browser without JavaScript: keeps cookies, asks for HTML, follows no redirect by itself
/// (so tests see each step).
pub fn html_client(accept_language: Option<&str>) -> reqwest::Client {
    use reqwest::header::{HeaderMap, ACCEPT, ACCEPT_LANGUAGE};
    let mut headers = HeaderMap::new();
    headers.insert(ACCEPT, "text/html".parse().unwrap());
    if let Some(lang) = accept_language {
        headers.insert(ACCEPT_LANGUAGE, lang.parse().unwrap());
    }
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// GETs `url`: (status, body text).
pub async fn page(client: &reqwest::Client, url: &str) -> (u16, String) {
    let res = client.get(url).send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// The CSRF token of a page's form.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

/// POSTs a page's form, which carries only its CSRF token.
pub async fn post_form(client: &reqwest::Client, url: &str, csrf: &str) -> reqwest::Response {
    client
        .post(url)
        .form(&[("csrf", csrf)])
        .send()
        .await
        .unwrap()
}

/// A claim at `app`'s node with someone else's key (the same tenant on another node).
pub async fn claim_with(
    app: &TestApp,
    key: &str,
    campaign: &str,
    consumer: &str,
) -> (u16, serde_json::Value) {
    let res = app
        .client
        .post(app.url(&format!("/api/v1/campaigns/{campaign}/claims")))
        .bearer_auth(key)
        .json(&serde_json::json!({ "consumer": consumer }))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or_default())
}

/// (won coupons, campaigns.allocated, total_limit) as the database holds them.
pub async fn stock_counts(db: &TestDatabase, campaign: &str) -> (i64, i64, i64) {
    let client = db.client().await;
    let row = client
        .query_one(
            "SELECT (SELECT count(*) FROM coupons WHERE campaign_id = $1::text::uuid AND won),
                    allocated, total_limit FROM campaigns WHERE id = $1::text::uuid",
            &[&campaign],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1), row.get(2))
}

/// A new key of `app`'s tenant with only `scopes`, as `ecoupon key create` makes one.
pub async fn key_with_scopes(app: &TestApp, scopes: &[&str]) -> String {
    let key = ecoupon::domain::api_key::NewApiKey::generate();
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    app.db
        .client()
        .await
        .execute(
            "INSERT INTO api_keys (id, tenant_id, name, prefix, key_hash, scopes)
             VALUES ($1, $2, 'test', $3, $4, $5)",
            &[
                &Uuid::new_v4(),
                &app.tenant_id,
                &key.prefix,
                &key.hash,
                &scopes,
            ],
        )
        .await
        .expect("insert API key");
    key.plaintext
}
