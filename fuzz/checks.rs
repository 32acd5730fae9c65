//! The properties every parser of outside input must keep, one function per parser, for
//! any bytes at all. Shared word for word by the cargo-fuzz targets (`fuzz/fuzz_targets/`,
//! run locally with libFuzzer) and their proptest twins (`tests/api/fuzz_twins.rs`, run
//! in CI): the two differ only in where the bytes come from. A property that does not
//! hold panics, which both harnesses report as a failure.

use std::pin::pin;
use std::task::{Context, Poll, Waker};

use actix_multipart::Multipart;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::web::Bytes;
use chrono::{TimeZone, Utc};

use ecoupon::config::Settings;
use ecoupon::domain::bulk_codes::{import_text, parse_import};
use ecoupon::domain::consumer::ConsumerRef;
use ecoupon::domain::coupon_code::{Charset, CodeFormat, CouponCode};
use ecoupon::domain::image::{ImageKind, MAX_IMAGE_BYTES};
use ecoupon::live::messages::ClientFrame;
use ecoupon::web::i18n::Lang;
use ecoupon::web::signin::{parse_callback, return_to};

/// The boundary of the multipart bodies the form checks build.
pub const BOUNDARY: &str = "ecouponfuzz";
const CONTENT_TYPE: &str = "multipart/form-data; boundary=ecouponfuzz";

/// Coupon codes as staff and consumers type them (`/merchant/redeem`, the API's
/// `/coupons/{code}`): canonical, idempotent, within the alphabet; a campaign's generated
/// codes always read back as themselves.
pub fn coupon_code(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(code) = CouponCode::parse(&text) {
        let s = code.as_str();
        assert!(!s.is_empty() && s.len() <= 64, "length of {s:?}");
        assert!(
            s.bytes()
                .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()),
            "{s:?} is not canonical"
        );
        assert_eq!(CouponCode::parse(s).as_ref(), Ok(&code), "not idempotent");
        assert_eq!(
            CouponCode::parse(&code.display_grouped()).as_ref(),
            Ok(&code),
            "the grouped form reads back differently"
        );
    }
    // The first byte picks a length, the rest is a prefix and a custom charset.
    let (length, rest) = data.split_first().map_or((0, data), |(b, r)| (*b, r));
    let rest = String::from_utf8_lossy(rest);
    let (prefix, charset) =
        rest.split_at(rest.char_indices().nth(4).map_or(rest.len(), |(i, _)| i));
    for setting in [charset, "unambiguous", "digits"] {
        let Ok(charset) = Charset::parse(setting) else {
            continue;
        };
        let Ok(format) = CodeFormat::new(usize::from(length), prefix, charset) else {
            continue;
        };
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(u64::from(length));
        let generated = format.generate(&mut rng);
        assert_eq!(
            CouponCode::parse(generated.as_str()).as_ref(),
            Ok(&generated),
            "a generated code does not read back as itself"
        );
        assert!(generated.as_str().starts_with(format.prefix()));
        assert_eq!(
            generated.as_str().len(),
            format.prefix().len() + format.length()
        );
    }
}

/// The CSV code import (`POST /api/v1/campaigns/{id}/codes/import`), read as the handler
/// reads it: the codes taken are canonical, at least 6 characters, each once, and each is
/// what its line's first cell says; a refusal lists bad lines only, each within the file,
/// with a known reason and a bounded echo of the value.
pub fn csv_import(data: &[u8]) {
    let Some(text) = import_text(data) else {
        assert!(std::str::from_utf8(data).is_err(), "UTF-8 refused");
        return;
    };
    // One leading byte-order mark is the spreadsheet's; a second one is content.
    let bom = if data.starts_with("\u{feff}".as_bytes()) {
        3
    } else {
        0
    };
    assert_eq!(
        text.as_bytes(),
        &data[bom..],
        "more than the byte-order mark taken"
    );
    let lines: Vec<&str> = text.lines().collect();
    match parse_import(text) {
        Ok(codes) => {
            let mut seen = std::collections::HashSet::new();
            let mut last = 0;
            for (line, code) in &codes {
                assert!(
                    *line > last && *line <= lines.len(),
                    "line {line} out of order"
                );
                last = *line;
                assert!(code.len() >= 6, "{code:?} too short");
                assert!(seen.insert(code.clone()), "{code:?} taken twice");
                assert_eq!(
                    CouponCode::parse(code)
                        .map(|c| c.as_str().to_owned())
                        .as_ref(),
                    Ok(code),
                    "{code:?} is not canonical"
                );
                let cell = lines[line - 1].split(',').next().unwrap_or("");
                assert_eq!(
                    CouponCode::parse(cell.trim().trim_matches('"'))
                        .map(|c| c.as_str().to_owned())
                        .as_ref(),
                    Ok(code),
                    "line {line} does not say {code:?}"
                );
            }
        }
        Err(errors) => {
            assert!(!errors.is_empty(), "a refusal without a line");
            for e in &errors {
                assert!(
                    (1..=lines.len()).contains(&e.line),
                    "line {} out of range",
                    e.line
                );
                assert!(
                    ["invalid_code", "code_too_short", "duplicate_in_file"].contains(&e.error),
                    "reason {:?}",
                    e.error
                );
                assert!(!e.value.is_empty() && e.value.chars().count() <= 80);
            }
        }
    }
}

/// Consumer references (the API's `consumer` member): trimmed, 1 to 200 characters,
/// no control characters, and parsing again changes nothing.
pub fn consumer_ref(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Ok(consumer) = ConsumerRef::parse(&text) {
        let s = consumer.as_str();
        let chars = s.chars().count();
        assert!((1..=200).contains(&chars), "{chars} characters");
        assert!(
            !s.chars().any(char::is_control),
            "control character in {s:?}"
        );
        assert_eq!(s, s.trim(), "not trimmed");
        assert_eq!(ConsumerRef::parse(s).as_ref(), Ok(&consumer));
    }
}

/// The config file (`ecoupon.toml`): any text gives settings or one message, never a
/// panic.
pub fn config(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    if let Err(e) = Settings::from_toml(&text) {
        assert!(!e.to_string().is_empty(), "an empty config error");
    }
}

/// What an OpenID Connect provider sends back (`/auth/{provider}/callback`, its query
/// or Apple's form_post body), and the `return_to` every sign-in carries: whatever is
/// accepted as `return_to` stays on this site.
pub fn oidc_callback(data: &[u8]) {
    let params = parse_callback(data);
    for value in [&params.code, &params.state, &params.error, &params.iss]
        .into_iter()
        .flatten()
    {
        assert!(value.len() <= data.len() * 3 + 3, "a parameter grew");
    }
    let text = String::from_utf8_lossy(data);
    for candidate in [text.as_ref(), params.state.as_deref().unwrap_or("/")] {
        if let Ok(path) = return_to(Some(candidate)) {
            let base = reqwest::Url::parse("https://ecoupon.invalid/sign-in").unwrap();
            let target = base
                .join(path)
                .unwrap_or_else(|e| panic!("{path:?} accepted but not a URL: {e}"));
            assert_eq!(
                (target.scheme(), target.host_str(), target.port()),
                ("https", Some("ecoupon.invalid"), None),
                "{path:?} leaves the site"
            );
        }
    }
}

/// Text frames from a live dashboard (`/merchant/live`): only `{"type":"snapshot"}` is
/// understood.
pub fn ws_client_frame(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Some(frame) = ClientFrame::parse(text) {
        assert_eq!(frame, ClientFrame::Snapshot);
        let value: serde_json::Value = serde_json::from_str(text).expect("accepted as JSON");
        assert_eq!(value["type"], "snapshot", "{text:?} accepted");
    }
}

/// Uploaded images (`PUT /api/v1/campaigns/{id}/image`, the logo, the console's
/// editor): accepted only with a PNG, JPEG or WebP signature, never SVG or HTML, within
/// 2 MiB.
pub fn image_sniff(data: &[u8]) {
    match ImageKind::sniff(data) {
        Ok(kind) => {
            assert!(!data.is_empty() && data.len() <= MAX_IMAGE_BYTES);
            let signed = match kind {
                ImageKind::Png => data.starts_with(b"\x89PNG\r\n\x1a\n"),
                ImageKind::Jpeg => data.starts_with(&[0xff, 0xd8, 0xff]),
                ImageKind::Webp => data.starts_with(b"RIFF") && data.get(8..12) == Some(b"WEBP"),
            };
            assert!(signed, "{kind:?} without its signature");
            assert!(["image/png", "image/jpeg", "image/webp"].contains(&kind.content_type()));
        }
        Err(e) => assert!(["invalid_image", "image_too_large"].contains(&e.code())),
    }
}

/// The console's campaign editor (`POST /merchant/campaigns`, multipart): any body gives
/// field errors or a campaign, never a panic, and every error names a field of the form.
pub fn campaign_form(data: &[u8]) {
    for lang in [Lang::Ja, Lang::En] {
        if let Ok(errors) = judge_form(data, lang) {
            for (field, message) in errors {
                assert!(
                    !field.is_empty() && !message.is_empty(),
                    "{field}: {message:?}"
                );
            }
        }
    }
}

/// The editor's judgement of a multipart body (boundary [`BOUNDARY`]).
pub fn judge_form(
    data: &[u8],
    lang: Lang,
) -> Result<Vec<(&'static str, String)>, ecoupon::web::error::AppError> {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(CONTENT_TYPE));
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    // Two chunks, so the reader's joins across chunk boundaries are exercised too.
    let (first, second) = data.split_at(data.len() / 2);
    let chunks: [Chunk; 2] = [
        Ok(Bytes::copy_from_slice(first)),
        Ok(Bytes::copy_from_slice(second)),
    ];
    let multipart = Multipart::new(&headers, futures_util::stream::iter(chunks));
    ready(ecoupon::web::console::campaigns::judge_new(
        multipart, lang, now,
    ))
}

/// The API's campaign body (`POST /api/v1/campaigns`, JSON): any bytes give a campaign or
/// an error with a stable code, never a panic.
pub fn campaign_json(data: &[u8]) {
    let now = Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap();
    if let Ok(request) = serde_json::from_slice::<ecoupon::web::NewCampaignRequest>(data) {
        if let Err(e) = ecoupon::domain::campaign::NewCampaign::parse(request.into_draft(), now) {
            assert!(!e.code().is_empty());
        }
    }
}

/// A multipart body made of fields, for seeds and the property tests' structured inputs.
pub fn multipart_body(fields: &[(String, String)]) -> Vec<u8> {
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(
            format!(
                "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"
            )
            .as_bytes(),
        );
    }
    body.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    body
}

type Chunk = Result<Bytes, actix_web::error::PayloadError>;

/// Runs a future whose input is all in memory to its end. A reader that still waits
/// after that many polls has stalled on a complete body: a bug, so a failure.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    for _ in 0..10_000 {
        if let Poll::Ready(out) = future.as_mut().poll(&mut cx) {
            return out;
        }
    }
    panic!("the reader stalled on a body that is all there")
}
