//! The API's list convention: `?limit=` (1 to 200, default 50) and `?cursor=` (the
//! `next_cursor` of the page before, opaque to clients); a page answers
//! `{"<things>": [...], "next_cursor": string|null}`, newest first, by keyset
//! (`created_at`, `id`) rather than OFFSET, so rows created meanwhile never shift a page.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::{AppError, AppResult};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// `?limit=` as sent (text, so that "abc" gets this endpoint's own error), or the default.
pub fn limit(raw: Option<&str>) -> AppResult<i64> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    raw.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            AppError::invalid(
                "invalid_limit",
                format!("limit must be a whole number from 1 to {MAX_LIMIT}"),
            )
            .field("limit")
        })
}

/// The cursor after a row.
pub fn encode(created_at: DateTime<Utc>, id: Uuid) -> String {
    B64.encode(format!("{}|{id}", created_at.timestamp_micros()))
}

/// `?cursor=` as the key of the row it was made from.
pub fn decode(raw: Option<&str>) -> AppResult<Option<(DateTime<Utc>, Uuid)>> {
    let Some(raw) = raw else {
        return Ok(None);
    };
    let parse = || {
        let text = String::from_utf8(B64.decode(raw.trim()).ok()?).ok()?;
        let (micros, id) = text.split_once('|')?;
        Some((
            DateTime::from_timestamp_micros(micros.parse().ok()?)?,
            id.parse().ok()?,
        ))
    };
    parse().map(Some).ok_or_else(|| {
        AppError::invalid(
            "invalid_cursor",
            "cursor must be a next_cursor this API gave",
        )
        .field("cursor")
    })
}

/// The next page's cursor: the last row's, when the page is full.
pub fn next<T>(
    rows: &[T],
    limit: i64,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> Option<String> {
    let full = usize::try_from(limit).is_ok_and(|l| rows.len() >= l);
    rows.last()
        .filter(|_| full)
        .map(key)
        .map(|(at, id)| encode(at, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_cursors() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some("200")).unwrap(), 200);
        for bad in ["0", "201", "-1", "abc", ""] {
            let e = limit(Some(bad)).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_limit");
            assert!(e.fields.unwrap().contains_key("limit"));
        }
        let at = DateTime::from_timestamp_micros(1_800_000_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode(Some(&encode(at, id))).unwrap(), Some((at, id)));
        assert_eq!(decode(None).unwrap(), None);
        for bad in ["", "x", "!!", &B64.encode("12|nope"), &B64.encode("x|y")] {
            let e = decode(Some(bad)).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_cursor", "{bad}");
        }
        let rows = [(at, id), (at, id)];
        assert!(next(&rows, 2, |r| *r).is_some());
        assert!(next(&rows, 3, |r| *r).is_none());
    }
}
