//! Scenarios as people do them, driven by a lean async client (reqwest) in this process:
//! - flash sale: a phone opens the claim page `/c/{slug}` (device cookie, CSRF token),
//!   sends the form, opens its coupon; 30 % press use (confirm page, then its form). Each
//!   phone has its own address in `X-Forwarded-For` (the server trusts 127.0.0.1 as a
//!   proxy for this run), so the per-IP limit sees a crowd, not one machine.
//! - till: a shop's till claims a coupon for a member through the JSON API and redeems it
//!   at once.
//!
//! Every task finishes the journey it is in when the phase ends, so the counts are exact
//! and can be checked against the database.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use reqwest::header::{HeaderMap, ACCEPT, ACCEPT_LANGUAGE, COOKIE, LOCATION, SET_COOKIE};
use serde_json::json;

use crate::api::Api;
use crate::wrk::Latency;

/// What a scenario did.
#[derive(Debug, Default)]
pub struct Tally {
    pub requests: u64,
    pub journeys: u64,
    /// Coupons acknowledged (303 from the claim form, 201 from the API).
    pub claimed: u64,
    /// Uses acknowledged (303 from the confirm form, 201 from the API).
    pub used: u64,
    pub failures: u64,
    pub first_failure: Option<String>,
    pub status: BTreeMap<u16, u64>,
    latencies_us: Vec<u32>,
    pub elapsed: Duration,
}

impl Tally {
    fn merge(&mut self, other: Tally) {
        self.requests += other.requests;
        self.journeys += other.journeys;
        self.claimed += other.claimed;
        self.used += other.used;
        self.failures += other.failures;
        if self.first_failure.is_none() {
            self.first_failure = other.first_failure;
        }
        for (code, n) in other.status {
            *self.status.entry(code).or_default() += n;
        }
        self.latencies_us.extend(other.latencies_us);
    }

    /// Latency over every request of the scenario.
    pub fn latency(&mut self) -> Latency {
        self.latencies_us.sort_unstable();
        let v = &self.latencies_us;
        let at = |p: f64| {
            let i = ((v.len() as f64 - 1.0) * p).round().max(0.0) as usize;
            v.get(i).copied().unwrap_or(0) as u64
        };
        Latency {
            p50: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            p999: at(0.999),
            max: at(1.0),
            mean: v.iter().map(|&x| x as f64).sum::<f64>() / v.len().max(1) as f64,
        }
    }

    pub fn rate(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn journeys_per_s(&self) -> f64 {
        self.journeys as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn to_json(&self) -> serde_json::Value {
        json!({
            "journeys": self.journeys,
            "journeys_per_s": self.journeys_per_s(),
            "requests": self.requests,
            "acknowledged_claims": self.claimed,
            "acknowledged_uses": self.used,
            "failed_journeys": self.failures,
            "first_failure": self.first_failure,
            "status": self.status,
            "seconds": self.elapsed.as_secs_f64(),
        })
    }

    /// Sends a request and reads the whole answer; the time counts both.
    async fn send(
        &mut self,
        req: reqwest::RequestBuilder,
    ) -> anyhow::Result<(u16, HeaderMap, String)> {
        let sent = Instant::now();
        let answer = async {
            let res = req.send().await?;
            let (status, headers) = (res.status().as_u16(), res.headers().clone());
            Ok::<_, reqwest::Error>((status, headers, res.text().await?))
        }
        .await;
        self.requests += 1;
        self.latencies_us
            .push(sent.elapsed().as_micros().min(u32::MAX as u128) as u32);
        let answer = answer?;
        *self.status.entry(answer.0).or_default() += 1;
        Ok(answer)
    }
}

/// `concurrency` tasks run journeys (numbered from 0) until `seconds` have passed.
async fn drive<F, Fut>(concurrency: usize, seconds: f64, journey: F) -> anyhow::Result<Tally>
where
    F: Fn(u64, Tally) -> Fut + Clone + Send + 'static,
    Fut: std::future::Future<Output = (Tally, anyhow::Result<()>)> + Send,
{
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (next, journey) = (next.clone(), journey.clone());
            tokio::spawn(async move {
                let mut tally = Tally::default();
                while Instant::now() < deadline {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let (back, outcome) = journey(n, tally).await;
                    tally = back;
                    tally.journeys += 1;
                    if let Err(e) = outcome {
                        tally.failures += 1;
                        tally.first_failure.get_or_insert(format!("{e:#}"));
                    }
                }
                tally
            })
        })
        .collect();
    let limit = Duration::from_secs_f64(seconds + 60.0);
    let joined = tokio::time::timeout(limit, futures_util::future::join_all(tasks))
        .await
        .with_context(|| {
            format!(
                "scenario hung: still running {} s after it should have ended",
                limit.as_secs()
            )
        })?;
    let mut total = Tally::default();
    for t in joined {
        total.merge(t.context("scenario task panicked")?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// A phone's cookies, as `name=value` pairs.
#[derive(Default)]
struct Cookies(Vec<(String, String)>);

impl Cookies {
    fn update(&mut self, headers: &HeaderMap) {
        for set in headers.get_all(SET_COOKIE) {
            let Some((name, value)) = set
                .to_str()
                .ok()
                .and_then(|s| s.split(';').next()?.split_once('='))
            else {
                continue;
            };
            self.0.retain(|(n, _)| n != name);
            self.0
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }

    /// The request with a `Cookie` header, when there is anything to send.
    fn add(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if self.0.is_empty() {
            return req;
        }
        let header: Vec<String> = self.0.iter().map(|(n, v)| format!("{n}={v}")).collect();
        req.header(COOKIE, header.join("; "))
    }
}

/// The value of a hidden form field.
fn field(html: &str, name: &str) -> anyhow::Result<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html
        .find(&marker)
        .with_context(|| format!("no {name} field in the page"))?
        + marker.len();
    Ok(html[at..].split('"').next().unwrap_or_default().to_string())
}

fn expect(step: &str, got: u16, want: u16, body: &str) -> anyhow::Result<()> {
    if got != want {
        let snippet: String = body.chars().take(200).collect();
        bail!("{step}: {got} instead of {want}: {snippet}");
    }
    Ok(())
}

/// One phone's visit to a flash sale.
async fn phone(api: Api, slug: Arc<str>, n: u64, t: &mut Tally) -> anyhow::Result<()> {
    let ip = format!("10.{}.{}.{}", (n >> 16) & 255, (n >> 8) & 255, n & 255);
    let mut jar = Cookies::default();
    let get = |path: &str, jar: &Cookies| {
        jar.add(
            api.http
                .get(format!("{}{path}", api.base))
                .header(ACCEPT, "text/html")
                .header(ACCEPT_LANGUAGE, "ja,en;q=0.5")
                .header("x-forwarded-for", &ip),
        )
    };
    let post = |path: &str, jar: &Cookies, form: &[(&str, &str)]| {
        jar.add(
            api.http
                .post(format!("{}{path}", api.base))
                .header(ACCEPT, "text/html")
                .header("x-forwarded-for", &ip)
                .form(form),
        )
    };
    let page = format!("/c/{slug}");
    let (status, headers, html) = t.send(get(&page, &jar)).await?;
    expect("claim page", status, 200, &html)?;
    jar.update(&headers);
    let csrf = field(&html, "csrf")?;
    let claim = format!("{page}/claim");
    let (status, headers, body) = t.send(post(&claim, &jar, &[("csrf", &csrf)])).await?;
    expect("claim form", status, 303, &body)?;
    jar.update(&headers);
    let coupon = headers
        .get(LOCATION)
        .and_then(|l| l.to_str().ok())
        .filter(|l| l.starts_with("/my/coupons/"))
        .with_context(|| format!("claim went to {:?}, not a coupon", headers.get(LOCATION)))?
        .to_string();
    t.claimed += 1;
    let (status, headers, html) = t.send(get(&coupon, &jar)).await?;
    expect("coupon page", status, 200, &html)?;
    jar.update(&headers);
    if n % 10 < 3 {
        let use_page = format!("{coupon}/use");
        let (status, headers, html) = t.send(get(&use_page, &jar)).await?;
        expect("use confirmation", status, 200, &html)?;
        jar.update(&headers);
        let (csrf, token) = (field(&html, "csrf")?, field(&html, "use_token")?);
        let form = [("csrf", csrf.as_str()), ("use_token", token.as_str())];
        let (status, _, body) = t.send(post(&use_page, &jar, &form)).await?;
        expect("use form", status, 303, &body)?;
        t.used += 1;
    }
    Ok(())
}

/// `phones` phones at once through a flash sale of the campaign `slug`.
pub async fn flash_sale(
    api: &Api,
    slug: &str,
    phones: usize,
    seconds: f64,
) -> anyhow::Result<Tally> {
    let api = Api {
        http: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(phones)
            .build()?,
        ..api.clone()
    };
    let slug: Arc<str> = slug.into();
    drive(phones, seconds, move |n, mut t| {
        let (api, slug) = (api.clone(), slug.clone());
        async move {
            let outcome = phone(api, slug, n, &mut t).await;
            (t, outcome)
        }
    })
    .await
}

/// One sale at a till: claim for a member, redeem at once.
async fn sale(api: Api, campaign: Arc<str>, n: u64, t: &mut Tally) -> anyhow::Result<()> {
    let claim = api
        .http
        .post(format!("{}/api/v1/campaigns/{campaign}/claims", api.base))
        .bearer_auth(&api.key)
        .json(&json!({ "consumer": format!("member-{n}") }));
    let (status, _, body) = t.send(claim).await?;
    expect("claim", status, 201, &body)?;
    t.claimed += 1;
    let coupon: serde_json::Value = serde_json::from_str(&body)?;
    let code = coupon["coupon"]["code"]
        .as_str()
        .context("no coupon code in the claim's answer")?;
    let redeem = api
        .http
        .post(format!("{}/api/v1/coupons/{code}/redemptions", api.base))
        .bearer_auth(&api.key)
        .json(&json!({ "store": "Shibuya", "staff": format!("till-{}", n % 64) }));
    let (status, _, body) = t.send(redeem).await?;
    expect("redemption", status, 201, &body)?;
    t.used += 1;
    Ok(())
}

/// `tills` tills at once, each selling one coupon after another.
pub async fn tills(api: &Api, campaign: &str, tills: usize, seconds: f64) -> anyhow::Result<Tally> {
    let api = api.clone();
    let campaign: Arc<str> = campaign.into();
    drive(tills, seconds, move |n, mut t| {
        let (api, campaign) = (api.clone(), campaign.clone());
        async move {
            let outcome = sale(api, campaign, n, &mut t).await;
            (t, outcome)
        }
    })
    .await
}
