//! Keyset pagination shared by the API's lists: `?limit=` (1 to 200, default 50) and an
//! opaque `cursor` naming the last row of the previous page by (time, id). A page is
//! `{"<things>": [...], "next_cursor": string|null}`; null means the last page.
//!
//! Keyset rather than OFFSET: a page costs the same however deep it is, and rows added
//! while a client pages do not shift the rows it has yet to see.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::error::{AppError, AppResult};

pub const DEFAULT_LIMIT: i64 = 50;
pub const MAX_LIMIT: i64 = 200;

/// The page size asked for, or 422 `invalid_limit`.
pub fn limit(given: Option<i64>) -> AppResult<i64> {
    let limit = given.unwrap_or(DEFAULT_LIMIT);
    if (1..=MAX_LIMIT).contains(&limit) {
        Ok(limit)
    } else {
        Err(AppError::invalid("invalid_limit", "limit: between 1 and 200").field("limit"))
    }
}

/// The cursor for the page after the row at (`at`, `id`).
pub fn encode(at: DateTime<Utc>, id: Uuid) -> String {
    B64.encode(format!("{}|{}", at.timestamp_micros(), id))
}

fn decode(raw: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let text = String::from_utf8(B64.decode(raw).ok()?).ok()?;
    let (micros, id) = text.split_once('|')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        id.parse().ok()?,
    ))
}

/// The position a `cursor` names, or 422 `invalid_cursor` for one we did not give.
pub fn after(cursor: Option<&str>) -> AppResult<Option<(DateTime<Utc>, Uuid)>> {
    cursor
        .map(|raw| {
            decode(raw).ok_or_else(|| {
                AppError::invalid("invalid_cursor", "cursor: not one we gave").field("cursor")
            })
        })
        .transpose()
}

/// `next_cursor` for a page of `limit` asked rows: only a full page may have a next one.
pub fn next<T>(
    rows: &[T],
    limit: i64,
    key: impl Fn(&T) -> (DateTime<Utc>, Uuid),
) -> Option<String> {
    if rows.len() as i64 == limit {
        rows.last().map(|r| {
            let (at, id) = key(r);
            encode(at, id)
        })
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cursor_round_trips_and_garbage_is_refused() {
        let at = DateTime::from_timestamp_micros(1_790_000_000_123_456).unwrap();
        let id = Uuid::now_v7();
        assert_eq!(after(Some(&encode(at, id))).unwrap(), Some((at, id)));
        assert_eq!(after(None).unwrap(), None);
        for bad in ["", "x", "bm90IGEgY3Vyc29y", &B64.encode("1|not-a-uuid")] {
            let e = after(Some(bad)).unwrap_err();
            assert_eq!(e.code.as_str(), "invalid_cursor", "{bad}");
        }
    }

    #[test]
    fn limits_are_1_to_200_with_50_by_default() {
        assert_eq!(limit(None).unwrap(), 50);
        assert_eq!(limit(Some(200)).unwrap(), 200);
        for bad in [0, -1, 201] {
            assert!(limit(Some(bad)).is_err());
        }
    }
}
