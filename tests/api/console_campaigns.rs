//! The console's campaign editor: create (with an image) and edit through the multipart
//! form, every bad field answered next to its input with nothing saved ([`editor`]); the
//! live preview in a real browser ([`in_browser`]); status actions, role boundaries,
//! another tenant's campaign, QR posters ([`page`]). The helpers below build the
//! multipart body a browser sends.

mod editor;
mod in_browser;
mod page;

use crate::console_helpers::console_page;
use crate::helpers::{csrf_of, location, TestApp};

pub(super) const BOUNDARY: &str = "----ecoupon-test-boundary-7MA4YWxkTrZu0gW";

/// A real 1×1 PNG.
pub(super) fn png_bytes() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 1, 1);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::Eight);
    let mut writer = encoder.write_header().unwrap();
    writer.write_image_data(&[0x80]).unwrap();
    writer.finish().unwrap();
    out
}

/// A multipart/form-data body as a browser sends it; `image` is (bytes, content type).
pub(super) fn multipart(fields: &[(&str, &str)], image: Option<(&[u8], &str)>) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    let (bytes, content_type) = image.unwrap_or((b"", "application/octet-stream"));
    let filename = if bytes.is_empty() { "" } else { "photo.png" };
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{filename}\"\r\nContent-Type: {content_type}\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

/// Opens `form_page`, then posts the editor's multipart form to `action` with its CSRF
/// token.
pub(super) async fn post_editor(
    app: &TestApp,
    client: &reqwest::Client,
    form_page: &str,
    action: &str,
    fields: &[(&str, &str)],
    image: Option<(&[u8], &str)>,
) -> reqwest::Response {
    let (status, html) = console_page(app, client, form_page).await;
    assert_eq!(status, 200, "{form_page} opens");
    let csrf = csrf_of(&html);
    let mut all = fields.to_vec();
    all.push(("csrf", &csrf));
    client
        .post(app.url(action))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(multipart(&all, image))
        .send()
        .await
        .unwrap()
}

/// A form filled in the way a merchant would, with `changes` applied on top.
pub(super) fn good_form<'a>(changes: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut fields = vec![
        ("name", "春のセール"),
        ("description", "駅前店の春のセール\n2 行目"),
        ("terms", "お一人様 1 回限り"),
        ("discount_kind", "amount_off_yen"),
        ("discount_value", "500"),
        ("total_limit", "50"),
        ("per_consumer_limit", "2"),
        ("claim_starts_at", ""),
        ("claim_ends_at", "2099-01-01T09:00"),
        ("use_starts_at", ""),
        ("use_ends_at", ""),
        ("valid_for_days", "7"),
        ("uses_per_coupon", "2"),
        ("win_probability", ""),
        ("signin", "none"),
        ("code_length", "8"),
        ("code_prefix", "SPR"),
        ("code_charset", "digits"),
        ("status", "active"),
    ];
    for (name, value) in changes {
        match fields.iter_mut().find(|(n, _)| n == name) {
            Some(slot) => slot.1 = value,
            None => fields.push((name, value)),
        }
    }
    fields
}

pub(super) async fn api_campaign(app: &TestApp, id: &str) -> serde_json::Value {
    let res = app
        .get(&format!("/api/v1/campaigns/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

pub(super) async fn count(app: &TestApp, sql: &str) -> i64 {
    app.db_value(sql, &[]).await
}

/// The id in a redirect to `/merchant/campaigns/{id}?saved=…`.
pub(super) fn created_id(res: &reqwest::Response) -> String {
    let to = location(res);
    let rest = to.strip_prefix("/merchant/campaigns/").expect(to);
    rest.split('?').next().unwrap().to_owned()
}

/// The text of the element with `id` (up to its next tag).
pub(super) fn text_by_id(html: &str, id: &str) -> String {
    let start = html
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in the page"));
    let after = &html[start..];
    let open_end = after.find('>').unwrap() + 1;
    after[open_end..].split('<').next().unwrap().to_owned()
}
