//! Shared by the benches that need a console session: sign in through the real form
//! (CSRF token from the page, then the POST), as a browser would.

/// Signs `email` in with `browser` (which must keep cookies and not follow redirects).
pub async fn sign_in(
    browser: &reqwest::Client,
    base: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    let form = browser
        .get(format!("{base}/merchant/login"))
        .send()
        .await?
        .text()
        .await?;
    let csrf = form
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap_or_default()
        .to_string();
    let signed_in = browser
        .post(format!("{base}/merchant/login"))
        .form(&[("email", email), ("password", password), ("csrf", &csrf)])
        .send()
        .await?;
    anyhow::ensure!(
        signed_in.status() == 303,
        "sign-in failed: {}",
        signed_in.status()
    );
    Ok(())
}
