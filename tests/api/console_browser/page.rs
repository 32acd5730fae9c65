//! What the console walk does with a page: look at it (a full-page screenshot and axe),
//! and the few WebDriver steps a person takes, each failing with the selector it was for.

use std::time::Duration;

use fantoccini::{Client, Locator};
use serde_json::json;

use crate::axe::accessibility_report;
use crate::browser::artifacts;
use crate::helpers::eventually;

/// What axe found on the pages looked at so far: the walk goes on past a bad page, so one
/// run names every page that needs work, and fails at the end.
#[derive(Default)]
pub struct Seen {
    problems: std::cell::RefCell<Vec<String>>,
}

impl Seen {
    /// A full-page screenshot (the window grows to the page's height for it), then axe.
    pub async fn look(&self, client: &Client, page: &str, lang: &str) {
        let (_, _, width, height) = client.get_window_rect().await.unwrap();
        // Growing the window can reflow the page taller; grow until it fits.
        let mut tall = height;
        for _ in 0..3 {
            let need =
                (page_height(client).await + chrome_height(client).await).clamp(height, 8000);
            if need <= tall {
                break;
            }
            tall = need;
            client
                .set_window_size(width as u32, tall as u32)
                .await
                .unwrap();
        }
        client
            .execute("window.scrollTo(0, 0);", vec![])
            .await
            .unwrap();
        let png = client.screenshot().await.expect("screenshot");
        client
            .set_window_size(width as u32, height as u32)
            .await
            .unwrap();
        let file = artifacts().join(format!("console-{page}-{lang}.png"));
        std::fs::write(&file, png).unwrap();
        let name = format!("console {page} ({lang})");
        if let Some(report) = accessibility_report(client, &name).await {
            self.problems.borrow_mut().push(report);
        }
    }

    pub fn assert_all_accessible(&self) {
        let problems = self.problems.borrow();
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }
}

/// What of the window is not page (the window's height minus the viewport's).
async fn chrome_height(client: &Client) -> u64 {
    client
        .execute(
            "return Math.max(0, window.outerHeight - window.innerHeight);",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(0)
}

async fn page_height(client: &Client) -> u64 {
    client
        .execute(
            "return Math.ceil(document.documentElement.scrollHeight);",
            vec![],
        )
        .await
        .unwrap()
        .as_u64()
        .unwrap_or(0)
}

pub async fn assert_image_loaded(client: &Client, css: &str) {
    wait_for(client, css).await;
    eventually(
        Duration::from_secs(10),
        &format!("{css} shows a picture"),
        async || {
            let w = client
                .execute(
                    "const i = document.querySelector(arguments[0]);
                     return i && i.complete ? i.naturalWidth : 0;",
                    vec![json!(css)],
                )
                .await
                .ok()?;
            (w.as_u64().unwrap_or(0) > 0).then_some(())
        },
    )
    .await;
}

pub async fn wait_for(client: &Client, css: &str) {
    client
        .wait()
        .at_most(Duration::from_secs(15))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} never appears: {e}"));
}

pub async fn click(client: &Client, css: &str) {
    wait_for(client, css).await;
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap_or_else(|e| panic!("click {css}: {e}"));
}

/// Replaces the input's value by typing, as a person would (so the page's JS sees it).
pub async fn type_into(client: &Client, css: &str, value: &str) {
    wait_for(client, css).await;
    let input = client.find(Locator::Css(css)).await.unwrap();
    input.clear().await.unwrap();
    input
        .send_keys(value)
        .await
        .unwrap_or_else(|e| panic!("type into {css}: {e}"));
}

pub async fn text(client: &Client, css: &str) -> String {
    wait_for(client, css).await;
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
        .trim()
        .to_string()
}

pub async fn attr(client: &Client, css: &str, name: &str) -> String {
    wait_for(client, css).await;
    client
        .find(Locator::Css(css))
        .await
        .unwrap()
        .attr(name)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{css} has no {name}"))
}

pub async fn wait_text(client: &Client, css: &str, needle: &str) {
    eventually(
        Duration::from_secs(10),
        &format!("{css} shows {needle:?}"),
        async || {
            let el = client.find(Locator::Css(css)).await.ok()?;
            el.text().await.ok()?.contains(needle).then_some(())
        },
    )
    .await;
}

pub async fn wait_attr(client: &Client, css: &str, name: &str, want: &str) {
    eventually(
        Duration::from_secs(15),
        &format!("{css}[{name}={want}]"),
        async || {
            let el = client.find(Locator::Css(css)).await.ok()?;
            (el.attr(name).await.ok()?.as_deref() == Some(want)).then_some(())
        },
    )
    .await;
}
