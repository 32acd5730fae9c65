//! In a real browser: the live preview follows typing, and each editor page in both
//! languages is screenshotted and checked with axe.

use std::time::Duration;

use fantoccini::Locator;

use crate::axe::assert_accessible;
use crate::browser::artifacts;
use crate::console_helpers::PASSWORD;
use crate::helpers::{browser, chromedriver, eventually, spawn_app};

/// The preview follows typing in both languages, without a round trip.
#[actix_web::test]
async fn the_preview_follows_what_is_typed_in_both_languages() {
    let app = spawn_app().await;
    let email = app.add_user("manager").await;
    let driver = chromedriver().await;
    let browser = browser(&driver).await;
    browser
        .goto(&app.url("/merchant/login?lang=ja"))
        .await
        .unwrap();
    browser
        .find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys(&email)
        .await
        .unwrap();
    browser
        .find(Locator::Id("password"))
        .await
        .unwrap()
        .send_keys(PASSWORD)
        .await
        .unwrap();
    browser
        .find(Locator::Id("login-button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    eventually(Duration::from_secs(10), "signed in", async || {
        let url = browser.current_url().await.ok()?;
        (url.path() == "/merchant").then_some(())
    })
    .await;
    browser
        .goto(&app.url("/merchant/campaigns/new"))
        .await
        .unwrap();
    browser
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .send_keys("夏祭り")
        .await
        .unwrap();
    browser
        .find(Locator::Css(
            "#discount_kind option[value='amount_off_yen']",
        ))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .find(Locator::Id("discount_value"))
        .await
        .unwrap()
        .send_keys("300")
        .await
        .unwrap();
    browser
        .find(Locator::Id("total_limit"))
        .await
        .unwrap()
        .send_keys("40")
        .await
        .unwrap();
    let text = async |css: &str| {
        browser
            .find(Locator::Css(css))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    };
    let want = [
        ("#preview-ja .preview-name", "夏祭り"),
        ("#preview-en .preview-name", "夏祭り"),
        ("#preview-ja .preview-discount", "300円引き"),
        ("#preview-en .preview-discount", "¥300 off"),
        ("#preview-ja .preview-remaining", "残り 40 枚"),
    ];
    for (css, expected) in want {
        eventually(Duration::from_secs(5), css, async || {
            (text(css).await == expected).then_some(())
        })
        .await;
    }
    // Each page in both languages: a screenshot to look at, and axe finds nothing.
    let shot = async |name: &str| {
        let png = browser.screenshot().await.expect("screenshot");
        std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
        assert_accessible(&browser, name).await;
    };
    shot("console-campaign-new-ja").await;
    browser
        .find(Locator::Id("save-campaign"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let id = eventually(Duration::from_secs(10), "the campaign page", async || {
        let url = browser.current_url().await.ok()?;
        let id = url.path().strip_prefix("/merchant/campaigns/")?.to_owned();
        (id != "new").then_some(id)
    })
    .await;
    assert_eq!(text("#stat-remaining").await, "40");
    shot("console-campaign-page-ja").await;
    browser
        .goto(&app.url(&format!("/merchant/campaigns/{id}?lang=en")))
        .await
        .unwrap();
    shot("console-campaign-page-en").await;
    browser
        .goto(&app.url(&format!("/merchant/campaigns/{id}/edit")))
        .await
        .unwrap();
    shot("console-campaign-edit-en").await;
    // A refused form, its messages and the preview of what was typed.
    browser
        .find(Locator::Id("name"))
        .await
        .unwrap()
        .clear()
        .await
        .unwrap();
    browser
        .find(Locator::Id("total_limit"))
        .await
        .unwrap()
        .send_keys("x")
        .await
        .unwrap();
    browser
        .find(Locator::Id("save-campaign"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    browser
        .wait()
        .for_element(Locator::Id("name-error"))
        .await
        .unwrap();
    shot("console-campaign-errors-en").await;
    browser.close().await.unwrap();
}
