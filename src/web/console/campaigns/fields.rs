//! The editor's inputs, grouped, each with its label, hint, value and message: one
//! table here and one loop in the template, so every input is labelled, described and
//! marked invalid the same way.

use serde::Serialize;
use serde_json::Value;

use super::draft::FieldError;
use super::form::FormValues;
use crate::web::i18n::{message, Lang};

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Text,
    Textarea,
    Number,
    Time,
    Select(&'static [&'static str]),
}

/// One input's declaration: `(min, max, step)` for numbers.
struct Spec {
    name: &'static str,
    kind: Kind,
    range: Option<(&'static str, &'static str, &'static str)>,
    required: bool,
    hint: bool,
}

const fn spec(name: &'static str, kind: Kind) -> Spec {
    Spec {
        name,
        kind,
        range: None,
        required: false,
        hint: false,
    }
}

const fn hinted(s: Spec) -> Spec {
    Spec { hint: true, ..s }
}

const fn ranged(s: Spec, min: &'static str, max: &'static str, step: &'static str) -> Spec {
    Spec {
        range: Some((min, max, step)),
        ..s
    }
}

const DISCOUNT_KINDS: &[&str] = &[
    "none",
    "amount_off_yen",
    "percent_off",
    "free_item",
    "free_text",
];

/// (group, its inputs). The status is chosen only at creation; afterwards it moves by
/// the campaign page's actions.
const GROUPS: &[(&str, &[Spec])] = &[
    (
        "basics",
        &[
            Spec {
                required: true,
                ..spec("name", Kind::Text)
            },
            spec("description", Kind::Textarea),
            spec("terms", Kind::Textarea),
        ],
    ),
    (
        "discount",
        &[
            spec("discount_kind", Kind::Select(DISCOUNT_KINDS)),
            hinted(spec("discount_value", Kind::Text)),
        ],
    ),
    (
        "quantity",
        &[
            Spec {
                required: true,
                ..hinted(ranged(
                    spec("total_limit", Kind::Number),
                    "1",
                    "10000000",
                    "1",
                ))
            },
            hinted(ranged(
                spec("per_consumer_limit", Kind::Number),
                "1",
                "1000",
                "1",
            )),
            hinted(ranged(
                spec("uses_per_coupon", Kind::Number),
                "1",
                "1000",
                "1",
            )),
            hinted(ranged(
                spec("win_probability", Kind::Number),
                "0",
                "100",
                "any",
            )),
        ],
    ),
    (
        "schedule",
        &[
            hinted(spec("claim_starts_at", Kind::Time)),
            spec("claim_ends_at", Kind::Time),
            hinted(spec("use_starts_at", Kind::Time)),
            spec("use_ends_at", Kind::Time),
            hinted(ranged(
                spec("valid_for_days", Kind::Number),
                "0",
                "3650",
                "any",
            )),
        ],
    ),
    (
        "codes",
        &[
            hinted(spec("signin", Kind::Select(&["none", "required"]))),
            hinted(ranged(spec("code_length", Kind::Number), "6", "32", "1")),
            hinted(spec("code_prefix", Kind::Text)),
            hinted(spec("code_charset", Kind::Text)),
        ],
    ),
    (
        "publish",
        &[hinted(spec("status", Kind::Select(&["draft", "active"])))],
    ),
];

#[derive(Serialize)]
struct Choice {
    value: &'static str,
    label: String,
    selected: bool,
}

#[derive(Serialize)]
struct Field {
    name: &'static str,
    label: String,
    hint: Option<String>,
    error: Option<String>,
    /// The ids of the hint and the message, for `aria-describedby`.
    describedby: Option<String>,
    value: String,
    required: bool,
    textarea: bool,
    select: bool,
    input_type: &'static str,
    min: Option<&'static str>,
    max: Option<&'static str>,
    step: Option<&'static str>,
    /// A `<datalist>` of suggestions.
    list: Option<&'static str>,
    options: Vec<Choice>,
}

fn field(lang: Lang, s: &Spec, values: &Value, errors: &[FieldError]) -> Field {
    let value = values
        .get(s.name)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let error = errors
        .iter()
        .find(|(f, _)| *f == s.name)
        .map(|(_, text)| text.clone());
    let hint = s
        .hint
        .then(|| message(lang, &format!("console.campaigns.hint.{}", s.name)));
    let ids: Vec<String> = [
        hint.as_ref().map(|_| format!("{}-hint", s.name)),
        error.as_ref().map(|_| format!("{}-error", s.name)),
    ]
    .into_iter()
    .flatten()
    .collect();
    let options = match s.kind {
        Kind::Select(choices) => choices
            .iter()
            .map(|c| Choice {
                value: c,
                label: message(lang, &format!("console.campaigns.option.{}.{c}", s.name)),
                selected: *c == value,
            })
            .collect(),
        _ => Vec::new(),
    };
    Field {
        name: s.name,
        label: message(lang, &format!("console.campaigns.field.{}", s.name)),
        hint,
        error,
        describedby: (!ids.is_empty()).then(|| ids.join(" ")),
        value,
        required: s.required,
        textarea: s.kind == Kind::Textarea,
        select: matches!(s.kind, Kind::Select(_)),
        input_type: match s.kind {
            Kind::Number => "number",
            Kind::Time => "datetime-local",
            _ => "text",
        },
        min: s.range.map(|r| r.0),
        max: s.range.map(|r| r.1),
        step: s.range.map(|r| r.2),
        list: (s.name == "code_charset").then_some("code-charsets"),
        options,
    }
}

/// The editor's groups of inputs; `creating` adds the initial status.
pub fn groups(lang: Lang, values: &FormValues, errors: &[FieldError], creating: bool) -> Value {
    let values = serde_json::to_value(values).unwrap_or(Value::Null);
    let groups: Vec<Value> = GROUPS
        .iter()
        .filter(|(group, _)| creating || *group != "publish")
        .map(|(group, specs)| {
            let fields: Vec<Field> = specs
                .iter()
                .map(|s| field(lang, s, &values, errors))
                .collect();
            serde_json::json!({
                "id": group,
                "legend": message(lang, &format!("console.campaigns.group.{group}")),
                "fields": fields,
            })
        })
        .collect();
    Value::Array(groups)
}
