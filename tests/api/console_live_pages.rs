//! The live dashboard pages as the server renders them (issue 9): what a browser without
//! JavaScript sees, and what `assets/dashboard.js` starts from — the per-minute chart's
//! data, the stock bar, the redemption feed and the sold-out marker.

use serde_json::json;

use crate::console_helpers::console_page;
use crate::helpers::spawn_app;
use crate::helpers::TestApp;

/// The opening tag of the element with `id`.
fn tag<'a>(html: &'a str, id: &str) -> &'a str {
    let needle = format!("id=\"{id}\"");
    let at = html
        .find(&needle)
        .unwrap_or_else(|| panic!("#{id} in {html}"));
    let start = html[..at].rfind('<').unwrap();
    let end = at + html[at..].find('>').unwrap();
    &html[start..=end]
}

/// An attribute of the element with `id`.
fn attr(html: &str, id: &str, name: &str) -> Option<String> {
    let tag = tag(html, id);
    let needle = format!(" {name}=\"");
    let at = tag.find(&needle)? + needle.len();
    Some(tag[at..].split('"').next().unwrap().to_string())
}

/// The text inside the element with `id` (up to its first closing tag).
fn inner(html: &str, id: &str) -> String {
    let open = tag(html, id);
    let at = html.find(open).unwrap() + open.len();
    html[at..].split("</").next().unwrap().to_string()
}

fn counts(html: &str, name: &str) -> Vec<i64> {
    attr(html, "activity-chart", name)
        .expect("chart data")
        .split(',')
        .map(|n| n.parse().unwrap())
        .collect()
}

/// The rows of the redemption feed, as (time, store, staff).
fn feed(html: &str) -> Vec<(String, String, String)> {
    let table = &html[html.find("id=\"redemption-feed\"").unwrap()..];
    let body = &table[table.find("<tbody>").unwrap()..table.find("</tbody>").unwrap()];
    body.split("<tr>")
        .skip(1)
        .map(|row| {
            let cells: Vec<String> = row
                .split("<td>")
                .skip(1)
                .map(|c| {
                    let c = c.split("</td>").next().unwrap();
                    // The time sits in a <time>.
                    match c.find('>') {
                        Some(i) if c.starts_with("<time") => {
                            c[i + 1..].split('<').next().unwrap().to_string()
                        }
                        _ => c.trim().to_string(),
                    }
                })
                .collect();
            (cells[0].clone(), cells[1].clone(), cells[2].clone())
        })
        .collect()
}

fn is_clock(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 8
        && b[2] == b':'
        && b[5] == b':'
        && s.chars()
            .enumerate()
            .all(|(i, c)| i == 2 || i == 5 || c.is_ascii_digit())
}

async fn claim_code(app: &TestApp, campaign: &str, consumer: &str) -> String {
    let (status, body) = app.claim(campaign, consumer).await;
    assert_eq!(status, 201, "{body}");
    body["coupon"]["code"].as_str().unwrap().to_string()
}

#[actix_web::test]
async fn the_campaign_page_renders_the_chart_feed_stock_and_sold_out_marker() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "週末セール", "total_limit": 3, "status": "active"}))
        .await;
    let (_, manager) = app.console_user("manager").await;
    let path = format!("/merchant/campaigns/{id}");

    // Nothing yet: sixty empty minutes, an empty feed, a full bar, not sold out.
    let (status, html) = console_page(&app, &manager, &path).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(counts(&html, "data-claims"), vec![0; 60]);
    assert_eq!(counts(&html, "data-redemptions"), vec![0; 60]);
    assert_eq!(attr(&html, "stock-meter", "value").as_deref(), Some("3"));
    assert_eq!(attr(&html, "stock-meter", "max").as_deref(), Some("3"));
    assert!(tag(&html, "sold-out").contains(" hidden"));
    assert!(!tag(&html, "feed-empty").contains(" hidden"));
    assert!(feed(&html).is_empty());
    assert!(inner(&html, "activity-totals").contains("受け取り 0 件・利用 0 件"));

    // Two claims, one redemption at a store by a named person.
    let first = claim_code(&app, &id, "alice").await;
    claim_code(&app, &id, "bob").await;
    let (status, body) = app
        .redeem(&first, json!({"store": "渋谷店", "staff": "田中"}))
        .await;
    assert_eq!(status, 201, "{body}");

    let (_, html) = console_page(&app, &manager, &path).await;
    let claims = counts(&html, "data-claims");
    let redemptions = counts(&html, "data-redemptions");
    assert_eq!((claims.len(), redemptions.len()), (60, 60));
    assert_eq!(claims.iter().sum::<i64>(), 2, "{claims:?}");
    assert_eq!(redemptions.iter().sum::<i64>(), 1, "{redemptions:?}");
    // All of it happened in the last minute or two, the newest minute last.
    assert_eq!(claims[58] + claims[59], 2, "{claims:?}");
    assert_eq!(redemptions[58] + redemptions[59], 1);
    assert!(inner(&html, "activity-totals").contains("受け取り 2 件・利用 1 件"));
    let start: i64 = attr(&html, "activity-chart", "data-start")
        .unwrap()
        .parse()
        .unwrap();
    let now: i64 = attr(&html, "activity-chart", "data-now")
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(start % 60_000, 0, "minutes start on the minute");
    assert!(
        (59 * 60_000..60 * 60_000 + 5_000).contains(&(now - start)),
        "the last minute is the current one: {}",
        now - start
    );
    let rows = feed(&html);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert!(is_clock(&rows[0].0), "{rows:?}");
    assert_eq!((rows[0].1.as_str(), rows[0].2.as_str()), ("渋谷店", "田中"));
    assert!(tag(&html, "feed-empty").contains(" hidden"));
    assert_eq!(attr(&html, "stock-meter", "value").as_deref(), Some("1"));
    assert!(tag(&html, "sold-out").contains(" hidden"));
    // The counters the socket updates are still there.
    assert_eq!(inner(&html, "stat-issued"), "2");
    assert_eq!(inner(&html, "stat-redeemed"), "1");
    assert_eq!(inner(&html, "stat-remaining"), "1");

    // The last one: sold out, and when.
    claim_code(&app, &id, "carol").await;
    let (_, html) = console_page(&app, &manager, &path).await;
    assert!(!tag(&html, "sold-out").contains(" hidden"), "{html}");
    let marker = inner(&html, "sold-out");
    let at = marker
        .rsplit('>')
        .next()
        .unwrap()
        .strip_suffix(" に完売")
        .unwrap_or_else(|| panic!("{marker}"));
    assert!(is_clock(at), "{marker}");
    // It is the time the last coupon was claimed, in Japan time.
    let claimed: chrono::DateTime<chrono::Utc> = app
        .db
        .client()
        .await
        .query_one(
            "SELECT claimed_at FROM coupons WHERE consumer = 'api:carol'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let jst = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    assert_eq!(
        at,
        claimed.with_timezone(&jst).format("%H:%M:%S").to_string()
    );
    assert_eq!(attr(&html, "stock-meter", "value").as_deref(), Some("0"));

    // In English by the switch.
    let (_, html) = console_page(&app, &manager, &format!("{path}?lang=en")).await;
    assert!(inner(&html, "sold-out").contains(&format!("Sold out at {at}")));
    assert!(inner(&html, "activity-totals").contains("Last 60 minutes: claims 3, redemptions 1"));
    assert!(html.contains("Latest redemptions"));
}

#[actix_web::test]
async fn the_chart_counts_only_the_last_hour_and_the_feed_only_live_redemptions() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "x", "total_limit": 50, "status": "active"}))
        .await;
    let mut codes = Vec::new();
    for n in 0..24 {
        codes.push(claim_code(&app, &id, &format!("c{n}")).await);
    }
    for (n, code) in codes.iter().enumerate() {
        let (status, body) = app
            .redeem(code, json!({"store": format!("S{n}"), "staff": "x"}))
            .await;
        assert_eq!(status, 201, "{body}");
    }
    let db = app.db.client().await;
    // Two hours ago: off the chart. Thirty minutes ago: thirty bars from the right.
    db.execute(
        "UPDATE coupons SET claimed_at = now() - interval '2 hours' WHERE consumer = 'api:c0'",
        &[],
    )
    .await
    .unwrap();
    db.execute(
        "UPDATE coupons SET claimed_at = date_trunc('minute', now()) - interval '30 minutes' WHERE consumer = 'api:c1'",
        &[],
    )
    .await
    .unwrap();
    // An undone redemption is neither a bar nor a feed row.
    db.execute(
        "UPDATE redemptions SET undone_at = now() WHERE store = 'S23'",
        &[],
    )
    .await
    .unwrap();

    let (_, manager) = app.console_user("owner").await;
    let (_, html) = console_page(&app, &manager, &format!("/merchant/campaigns/{id}")).await;
    let claims = counts(&html, "data-claims");
    assert_eq!(claims.iter().sum::<i64>(), 23, "{claims:?}");
    // Index 29, or 28 when the page rendered a minute after the update.
    assert_eq!(claims[28] + claims[29], 1, "{claims:?}");
    assert_eq!(counts(&html, "data-redemptions").iter().sum::<i64>(), 23);
    let rows = feed(&html);
    assert_eq!(rows.len(), 20, "the latest twenty");
    assert_eq!(rows[0].1, "S22", "newest first: {rows:?}");
    assert!(rows.iter().all(|r| r.1 != "S23"));
}

#[actix_web::test]
async fn both_pages_carry_the_live_hooks_and_the_script() {
    let app = spawn_app().await;
    let id = app
        .create_campaign_id(json!({"name": "春", "total_limit": 5, "status": "active"}))
        .await;
    claim_code(&app, &id, "a").await;
    let (_, manager) = app.console_user("manager").await;

    let (_, home) = console_page(&app, &manager, "/merchant").await;
    let (_, campaign) = console_page(&app, &manager, &format!("/merchant/campaigns/{id}")).await;
    for (html, kind) in [(&home, "home"), (&campaign, "campaign")] {
        assert_eq!(attr(html, "live-banner", "role").as_deref(), Some("status"));
        assert_eq!(
            attr(html, "live-banner", "data-live-page").as_deref(),
            Some(kind)
        );
        assert_eq!(
            attr(html, "live-banner", "data-reconnecting").as_deref(),
            Some("接続が切れました。再接続しています…")
        );
        assert_eq!(
            attr(html, "live-banner", "data-status-paused").as_deref(),
            Some("一時停止")
        );
        assert_eq!(inner(html, "live-banner"), "", "empty while connected");
        let at = html.find("dashboard").expect("the script");
        let src_start = html[..at].rfind("src=\"").unwrap() + 5;
        let src = html[src_start..].split('"').next().unwrap();
        assert!(src.starts_with("/assets/"), "{src}");
        let res = manager.get(app.url(src)).send().await.unwrap();
        assert_eq!(res.status(), 200);
        assert!(res.text().await.unwrap().contains("/merchant/live"));
    }
    assert_eq!(
        attr(&campaign, "live-banner", "data-campaign-id").as_deref(),
        Some(id.as_str())
    );
    // The table cells the socket updates, as of loading.
    let row = &home[home.find(&format!("data-campaign-id=\"{id}\"")).unwrap()..];
    assert!(row.contains("data-field=\"issued\">1<"));
    assert!(row.contains("data-field=\"remaining\">4 / 5<"));

    let (_, english) = console_page(&app, &manager, "/merchant?lang=en").await;
    assert_eq!(
        attr(&english, "live-banner", "data-reconnecting").as_deref(),
        Some("Connection lost. Reconnecting…")
    );
}

pub(crate) mod in_browser {
    //! The pages in headless Chromium against the real socket: the home counter follows an
    //! API claim within a second without a reload; the campaign page's counts, stock bar,
    //! chart, feed and sold-out marker follow claims and a redemption. Screenshots of both
    //! pages in both languages, and axe on each.

    use std::time::{Duration, Instant};

    use fantoccini::{Client, Locator};
    use serde_json::json;

    use crate::axe::assert_accessible;
    use crate::browser::artifacts;
    use crate::console_helpers::PASSWORD;
    use crate::helpers::{browser, chromedriver, eventually, spawn_app, TestApp};

    const DESK: (u32, u32) = (1280, 1400);

    pub(crate) async fn js(client: &Client, script: &str) -> serde_json::Value {
        client.execute(script, vec![]).await.unwrap()
    }

    pub(crate) async fn text(client: &Client, css: &str) -> String {
        let script = format!(
            "var e = document.querySelector({}); return e ? e.textContent.trim() : null;",
            serde_json::to_string(css).unwrap()
        );
        js(client, &script)
            .await
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    pub(crate) async fn wait_text(client: &Client, css: &str, want: &str, within: Duration) {
        eventually(within, &format!("{css} reads {want:?}"), async || {
            (text(client, css).await == want).then_some(())
        })
        .await;
    }

    /// Opens `path` and waits until the socket's first snapshot has arrived.
    pub(crate) async fn open_live(client: &Client, app: &TestApp, path: &str) {
        client.goto(&app.url(path)).await.unwrap();
        eventually(
            Duration::from_secs(10),
            &format!("{path} is connected"),
            async || {
                let v = js(
                    client,
                    "return document.documentElement.getAttribute('data-live');",
                )
                .await;
                (v.as_str() == Some("connected")).then_some(())
            },
        )
        .await;
    }

    pub(crate) async fn sign_in(client: &Client, app: &TestApp, email: &str) {
        client
            .goto(&app.url("/merchant/login?lang=ja"))
            .await
            .unwrap();
        for (css, value) in [("#email", email), ("#password", PASSWORD)] {
            let input = client.wait().for_element(Locator::Css(css)).await.unwrap();
            input.send_keys(value).await.unwrap();
        }
        client
            .find(Locator::Css("#login-button"))
            .await
            .unwrap()
            .click()
            .await
            .unwrap();
        eventually(Duration::from_secs(20), "sign-in finishes", async || {
            let url = client.current_url().await.ok()?;
            (!url.path().starts_with("/merchant/login")).then_some(())
        })
        .await;
    }

    pub(crate) async fn look(client: &Client, name: &str) {
        let png = client.screenshot().await.expect("screenshot");
        std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
        assert_accessible(client, name).await;
    }

    async fn claim(app: &TestApp, campaign: &str, consumer: &str) -> String {
        let (status, body) = app.claim(campaign, consumer).await;
        assert_eq!(status, 201, "{body}");
        body["coupon"]["code"].as_str().unwrap().to_string()
    }

    fn sum(csv: &str) -> i64 {
        csv.split(',').map(|n| n.parse::<i64>().unwrap()).sum()
    }

    #[actix_web::test]
    async fn the_dashboard_follows_claims_and_redemptions_without_a_reload() {
        let driver = chromedriver().await;
        let app = spawn_app().await;
        let id = app
            .create_campaign_id(json!({"name": "週末セール", "total_limit": 5, "status": "active"}))
            .await;
        claim(&app, &id, "first").await;
        let manager = app.add_user("manager").await;
        let desk = browser(&driver).await;
        desk.set_window_size(DESK.0, DESK.1).await.unwrap();
        sign_in(&desk, &app, &manager).await;

        // Home: the issued counter follows an API claim within a second.
        open_live(&desk, &app, "/merchant?lang=ja").await;
        let cell = format!("tr[data-campaign-id=\"{id}\"] [data-field=issued]");
        let remaining = format!("tr[data-campaign-id=\"{id}\"] [data-field=remaining]");
        assert_eq!(text(&desk, &cell).await, "1");
        let marker = js(&desk, "window.__notReloaded = true; return 1;").await;
        assert_eq!(marker, json!(1));
        let started = Instant::now();
        claim(&app, &id, "second").await;
        wait_text(&desk, &cell, "2", Duration::from_secs(1)).await;
        let lag = started.elapsed();
        assert!(lag < Duration::from_secs(1), "took {lag:?}");
        wait_text(&desk, &remaining, "3 / 5", Duration::from_secs(1)).await;
        assert_eq!(
            js(&desk, "return window.__notReloaded === true;").await,
            json!(true),
            "no reload"
        );
        assert_eq!(text(&desk, "#live-banner").await, "");
        look(&desk, "console-live-home-ja").await;
        open_live(&desk, &app, "/merchant?lang=en").await;
        look(&desk, "console-live-home-en").await;

        // The campaign page: counts, bar, chart, feed, then sold out.
        let path = format!("/merchant/campaigns/{id}");
        open_live(&desk, &app, &format!("{path}?lang=ja")).await;
        let drawn = js(
            &desk,
            "return document.querySelectorAll('#activity-chart rect').length;",
        )
        .await;
        assert!(drawn.as_u64().unwrap() >= 1, "bars drawn: {drawn}");
        let claims_before = sum(js(
            &desk,
            "return document.getElementById('activity-chart').getAttribute('data-claims');",
        )
        .await
        .as_str()
        .unwrap());
        assert_eq!(claims_before, 2);
        let code = claim(&app, &id, "third").await;
        wait_text(&desk, "#stat-issued", "3", Duration::from_secs(1)).await;
        wait_text(&desk, "#stat-remaining", "2", Duration::from_secs(1)).await;
        assert_eq!(
            js(
                &desk,
                "return document.getElementById('stock-meter').value;"
            )
            .await,
            json!(2)
        );
        let claims_now = sum(js(
            &desk,
            "return document.getElementById('activity-chart').getAttribute('data-claims');",
        )
        .await
        .as_str()
        .unwrap());
        assert_eq!(claims_now, 3, "the chart gains the claim");
        let (status, body) = app
            .redeem(&code, json!({"store": "渋谷店", "staff": "田中"}))
            .await;
        assert_eq!(status, 201, "{body}");
        wait_text(&desk, "#stat-redeemed", "1", Duration::from_secs(2)).await;
        eventually(
            Duration::from_secs(2),
            "the feed shows the use",
            async || {
                let row = text(&desk, "#redemption-feed tbody tr:first-child").await;
                (row.contains("渋谷店")).then_some(())
            },
        )
        .await;
        assert!(
            js(
                &desk,
                "return document.getElementById('feed-empty').hidden;"
            )
            .await
                == json!(true)
        );
        let fourth = claim(&app, &id, "fourth").await;
        claim(&app, &id, "fifth").await;
        wait_text(&desk, "#stat-remaining", "0", Duration::from_secs(2)).await;
        eventually(Duration::from_secs(2), "sold out is shown", async || {
            let shown = text(&desk, "#sold-out").await;
            shown.ends_with("に完売").then_some(())
        })
        .await;
        look(&desk, "console-live-campaign-ja").await;
        open_live(&desk, &app, &format!("{path}?lang=en")).await;
        assert!(text(&desk, "#sold-out").await.starts_with("Sold out at "));
        look(&desk, "console-live-campaign-en").await;

        // The server drops the socket (the session needs MFA again) and refuses it until
        // that is done: the banner says so, and goes once the socket is back, with what
        // happened meanwhile taken from the fresh snapshot.
        let db = app.db.client().await;
        let set_pending = async |pending: bool| {
            db.execute(
                "UPDATE merchant_sessions SET mfa_pending = $2
                 WHERE user_id = (SELECT id FROM merchant_users WHERE email = $1)",
                &[&manager, &pending],
            )
            .await
            .unwrap();
        };
        set_pending(true).await;
        wait_text(
            &desk,
            "#live-banner",
            "Connection lost. Reconnecting…",
            Duration::from_secs(5),
        )
        .await;
        assert_eq!(
            js(
                &desk,
                "return document.documentElement.getAttribute('data-live');"
            )
            .await,
            json!("away")
        );
        let (status, body) = app.redeem(&fourth, json!({"store": "新宿店"})).await;
        assert_eq!(status, 201, "{body}");
        set_pending(false).await;
        wait_text(&desk, "#live-banner", "", Duration::from_secs(20)).await;
        wait_text(&desk, "#stat-redeemed", "2", Duration::from_secs(2)).await;
        desk.close().await.unwrap();
    }
}
