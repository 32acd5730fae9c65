//! The proptest twins of the cargo-fuzz targets in `fuzz/`: the very same properties
//! (`fuzz/checks.rs`, included below) on generated inputs, so CI checks every parser of
//! outside input on stable Rust. Each twin feeds raw bytes and inputs shaped like the
//! real thing (field names the parser knows, the characters it treats specially), since
//! proptest, unlike libFuzzer, cannot discover structure on its own. `cargo fuzz run
//! <target>` explores far deeper (see SECURITY.md for the runs).

#[allow(dead_code)]
#[path = "../../fuzz/checks.rs"]
mod checks;

use proptest::prelude::*;
use proptest::sample::select;

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..300)
}

fn text(pattern: &'static str) -> impl Strategy<Value = Vec<u8>> {
    proptest::string::string_regex(pattern)
        .expect("a valid pattern")
        .prop_map(String::into_bytes)
}

/// Values a form or config field might be sent: numbers at the edges, times, words,
/// markup, control characters and anything at all.
fn value() -> impl Strategy<Value = String> {
    prop_oneof![
        select(vec![
            "",
            "0",
            "1",
            "-1",
            "10",
            "100",
            "1e308",
            "NaN",
            "inf",
            "-0",
            "9223372036854775807",
            "9223372036854775808",
            "-9223372036854775809",
            "0.5",
            "50.5",
            "100.0000001",
            "2026-11-27T12:00",
            "2026-02-30T25:61",
            "9999-12-31T23:59",
            "0000-01-01T00:00",
            "none",
            "required",
            "draft",
            "active",
            "ended",
            "digits",
            "unambiguous",
            "ABCDEFGHJK",
            "amount_off_yen",
            "percent_off",
            "free_item",
            "free_text",
            "<script>alert(1)</script>",
            "\u{0}",
            "\u{202e}",
            "クーポン",
            "ー－　",
        ])
        .prop_map(String::from),
        any::<String>(),
        "[0-9.eE+-]{0,24}",
    ]
}

fn toml_line() -> impl Strategy<Value = String> {
    let key = select(vec![
        "listen",
        "metrics_listen",
        "public_url",
        "database_url",
        "data_dir",
        "demo",
        "log.level",
        "log.format",
        "database.pool_size",
        "engine.max_batch",
        "engine.max_inflight_batches",
        "engine.actor_idle",
        "console.trusted_proxies",
        "console.ip_allowlist",
        "secrets.cookie_key",
        "report.prometheus_url",
        "backup.keep",
        "retention.claims",
        "mail.smtp_url",
        "pages.rate_limit_per_minute",
        "signin.providers",
        "unknown.key",
    ]);
    let toml_value = prop_oneof![
        value().prop_map(|v| format!("{v:?}")),
        "-?[0-9]{1,20}",
        select(vec![
            "true",
            "[]",
            "[\"10.0.0.0/8\", \"::1/128\", \"nope\"]",
            "{ a = 1 }",
            "\"30s\"",
            "\"5 years\"",
            "\"postgres://u:secret@127.0.0.1:1/x\"",
            "\"[::1]:0\"",
            "\"127.0.0.1:99999\"",
            "\"https://\"",
            "1979-05-27T07:32:00Z",
        ])
        .prop_map(String::from),
    ];
    prop_oneof![
        (key, toml_value).prop_map(|(k, v)| format!("{k} = {v}")),
        "\\[[a-z.]{0,12}\\]",
        any::<String>(),
    ]
}

fn form_field() -> impl Strategy<Value = (String, String)> {
    let name = select(vec![
        "name",
        "description",
        "terms",
        "discount_kind",
        "discount_value",
        "total_limit",
        "per_consumer_limit",
        "claim_starts_at",
        "claim_ends_at",
        "use_starts_at",
        "use_ends_at",
        "valid_for_days",
        "uses_per_coupon",
        "win_probability",
        "signin",
        "code_length",
        "code_prefix",
        "code_charset",
        "status",
        "csrf",
        "remove_image",
        "unknown",
    ]);
    (name.prop_map(String::from), value())
}

fn json_member() -> impl Strategy<Value = (String, serde_json::Value)> {
    let key = select(vec![
        "name",
        "description",
        "terms",
        "discount",
        "status",
        "signin",
        "code_length",
        "code_prefix",
        "code_charset",
        "total_limit",
        "per_consumer_limit",
        "claim_starts_at",
        "claim_ends_at",
        "use_starts_at",
        "use_ends_at",
        "valid_for_seconds",
        "uses_per_coupon",
        "win_probability",
        "typo",
    ]);
    let json_value = prop_oneof![
        value().prop_map(serde_json::Value::from),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(serde_json::Value::from),
        Just(serde_json::Value::Null),
        (select(vec!["amount_off_yen", "percent_off", "free_item", "free_text", "x"]), value())
            .prop_map(|(kind, v)| serde_json::json!({"kind": kind, "amount": v.parse::<i64>().ok(), "percent": 50, "item": v, "text": "t"})),
    ];
    (key.prop_map(String::from), json_value)
}

/// A line of a code import: codes as people type them (repeated ones come from the small
/// alphabet), too short, with quotes, extra columns, spaces and anything at all.
fn csv_line() -> impl Strategy<Value = String> {
    let cell = prop_oneof![
        "[A-C]{6,7}",
        "[a-zA-Z0-9-]{0,12}",
        "[A-Z0-9\u{ff10}-\u{ff19}\u{ff21}-\u{ff3a}\u{30fc} -]{0,70}",
        select(vec!["", "code", "\"", "\"\"", "ＡＢＣＤＥＦ", "AAAAAA1"]).prop_map(String::from),
        any::<String>(),
    ];
    (
        select(vec!["", " ", "\"", "\t"]),
        cell,
        select(vec!["", ",", ",note", ",\"a,b\"", "\""]),
    )
        .prop_map(|(around, cell, rest)| format!("{around}{cell}{around}{rest}"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]

    #[test]
    fn coupon_code(data in prop_oneof![
        bytes(),
        text("[A-Za-z0-9 \u{3000}\u{2010}-\u{2015}\u{2212}\u{30fc}\u{ff70}\u{ff10}-\u{ff19}\u{ff21}-\u{ff3a}\u{ff41}-\u{ff5a}-]{0,80}"),
        text("[\\x00-\\x20]?[6-9\\x20-\\x7f][A-Z0-9]{0,10}[A-Z0-9]{10,40}"),
    ]) {
        checks::coupon_code(&data);
    }

    #[test]
    fn consumer_ref(data in prop_oneof![
        bytes(),
        any::<String>().prop_map(String::into_bytes),
        text("[ \t\n\u{3000}]{0,3}[a-zあ\u{7f}\u{85}-]{0,205}[ \t\n\u{3000}]{0,3}"),
    ]) {
        checks::consumer_ref(&data);
    }

    #[test]
    fn oidc_callback(data in prop_oneof![
        bytes(),
        prop::collection::vec(
            (select(vec!["code", "state", "error", "iss", "user", "c%6fde"]), "[a-zA-Z0-9%+&=/._~:-]{0,40}"),
            0..6,
        ).prop_map(|pairs| pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&").into_bytes()),
        text("/[/\\\\a-z0-9%.:@?#&=\t \u{3000}\u{ff0f}-]{0,30}"),
    ]) {
        checks::oidc_callback(&data);
    }

    #[test]
    fn ws_client_frame(data in prop_oneof![
        bytes(),
        text("\\{ ?\"(type|TYPE|typ)\" ?: ?(\"(snapshot|stats|Snapshot|)\"|null|1|\\[\\]|\\{\\}) ?(, ?\"[a-z]{0,5}\" ?: ?[0-9]{0,3})?\\}"),
        text("[\\[\\]{}\":,a-z0-9 ]{0,40}"),
    ]) {
        checks::ws_client_frame(&data);
    }

    #[test]
    fn image_sniff(data in prop_oneof![
        bytes(),
        (select(vec![
            &b"\x89PNG\r\n\x1a\n"[..], &b"\x89PNG\r\n"[..], &[0xff, 0xd8, 0xff][..], &[0xff, 0xd8][..],
            &b"RIFF\0\0\0\0WEBP"[..], &b"RIFF\0\0\0\0WEB"[..], &b"<svg"[..], &b"<?xml"[..], &b"GIF89a"[..],
        ]), bytes()).prop_map(|(magic, rest)| [magic, &rest].concat()),
    ]) {
        checks::image_sniff(&data);
    }
}

proptest! {
    // Each case parses a whole document or form: fewer, richer cases.
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn config(data in prop_oneof![
        bytes(),
        prop::collection::vec(toml_line(), 0..8).prop_map(|lines| lines.join("\n").into_bytes()),
    ]) {
        checks::config(&data);
    }

    #[test]
    fn campaign_form(data in prop_oneof![
        bytes(),
        prop::collection::vec(form_field(), 0..24).prop_map(|fields| checks::multipart_body(&fields)),
        (prop::collection::vec(form_field(), 1..8), any::<prop::sample::Index>(), bytes())
            .prop_map(|(fields, at, junk)| {
                // A well-formed body with bytes spliced in somewhere.
                let mut body = checks::multipart_body(&fields);
                let at = at.index(body.len() + 1);
                body.splice(at..at, junk);
                body
            }),
    ]) {
        checks::campaign_form(&data);
    }

    #[test]
    fn csv_import(data in prop_oneof![
        bytes(),
        (
            any::<bool>(),
            select(vec!["", "code\n", "Code,note\r\n", "\"code\"\n", "code"]),
            prop::collection::vec(csv_line(), 0..24),
            select(vec!["\n", "\r\n", "\r"]),
        ).prop_map(|(bom, header, lines, end)| {
            let bom = if bom { "\u{feff}" } else { "" };
            format!("{bom}{header}{}", lines.join(end)).into_bytes()
        }),
    ]) {
        checks::csv_import(&data);
    }

    #[test]
    fn campaign_json(data in prop_oneof![
        bytes(),
        prop::collection::vec(json_member(), 0..14).prop_map(|members| {
            serde_json::Value::Object(members.into_iter().collect()).to_string().into_bytes()
        }),
    ]) {
        checks::campaign_json(&data);
    }
}

/// The form twin is only worth something if the bytes reach the rules: a well-formed body
/// is judged field by field (an empty stream would pass every case and check nothing).
#[test]
fn campaign_form_bodies_reach_the_rules() {
    let field = |k: &str, v: &str| (k.to_owned(), v.to_owned());
    let good = checks::multipart_body(&[field("name", "Spring sale"), field("total_limit", "100")]);
    assert_eq!(
        checks::judge_form(&good, ecoupon::web::i18n::Lang::En).unwrap(),
        vec![]
    );
    let bad = checks::multipart_body(&[
        field("name", "Spring sale"),
        field("total_limit", "lots"),
        field("code_length", "3"),
    ]);
    let errors = checks::judge_form(&bad, ecoupon::web::i18n::Lang::En).unwrap();
    let fields: Vec<&str> = errors.iter().map(|(f, _)| *f).collect();
    assert_eq!(fields, ["total_limit", "code_length"], "{errors:?}");
    let params = ecoupon::web::signin::parse_callback(b"state=a%2Fb&code=c&code=d&user=x");
    assert_eq!(params.state.as_deref(), Some("a/b"));
    assert_eq!(params.code.as_deref(), Some("c"));
}

/// The import twin is only worth something if its generated files can be taken: a file
/// shaped like the generator's, with a BOM, a header and CRLF, reads as codes.
#[test]
fn csv_import_files_reach_the_parser() {
    let file = "\u{feff}Code,note\r\n\"ABCDEF\",x\r\n abcdeg ,\"a,b\"\r\nＡＢＣＤＥＨ\r\n";
    let text = ecoupon::domain::bulk_codes::import_text(file.as_bytes()).unwrap();
    let codes = ecoupon::domain::bulk_codes::parse_import(text).unwrap();
    assert_eq!(
        codes,
        vec![
            (2, "ABCDEF".to_owned()),
            (3, "ABCDEG".to_owned()),
            (4, "ABCDEH".to_owned())
        ]
    );
    checks::csv_import(file.as_bytes());
    // libFuzzer's first find (a wrong property, not a parser bug): only the first of two
    // byte-order marks is the spreadsheet's, so the header line with the second is a bad code.
    let twice = "\u{feff}\u{feff}Code\nABCDEF\n";
    let text = ecoupon::domain::bulk_codes::import_text(twice.as_bytes()).unwrap();
    let errors = ecoupon::domain::bulk_codes::parse_import(text).unwrap_err();
    assert_eq!((errors[0].line, errors[0].error), (1, "invalid_code"));
    checks::csv_import(twice.as_bytes());
    checks::csv_import(&[
        239, 187, 191, 239, 187, 191, 67, 111, 100, 101, 0, 0, 0, 0, 0, 50, 55, 13, 10, 0, 0, 44,
        105, 115, 65, 65, 65, 65, 65, 65, 49, 44, 50, 48, 50, 54, 45, 49, 49, 67, 111, 100, 101,
        44, 36, 0, 115, 115, 45, 50, 117, 101, 100, 13, 55,
    ]);
}
