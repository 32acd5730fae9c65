//! Campaign definition: what is offered, how many may be claimed, and when. Input is
//! parsed once into types whose invariants hold by construction.
//!
//! - [`error`]: every way campaign input can be wrong, each with a stable code;
//! - [`discount`]: what a coupon gives;
//! - [`status`]: draft → active ⇄ paused → ended;
//! - [`rules`]: limits and windows, and the claim-time checks on them;
//! - [`lottery`]: the draw for lottery campaigns;
//! - [`rejection`]: the expected "no" answers to a claim;
//! - [`draft`]: a whole new campaign, parsed from a [`CampaignDraft`];
//! - [`patch`]: a change to some of a stored campaign's fields.

mod discount;
mod draft;
mod error;
mod lottery;
mod patch;
mod rejection;
mod rules;
mod status;

pub use discount::{Discount, RawDiscount};
pub use draft::{new_slug, CampaignDraft, NewCampaign};
pub use error::CampaignError;
pub use lottery::draw_lottery;
pub use patch::{CampaignPatch, Change, ParsedPatch, PatchError, Stored};
pub use rejection::ClaimRejection;
pub use rules::{CampaignRules, RulesParams};
pub use status::{CampaignStatus, StatusAction};

type Result<T, E = CampaignError> = std::result::Result<T, E>;

/// Range check plus narrowing, so no `as` cast can truncate. Ranges mirror the messages.
fn ranged<T: TryFrom<i64>>(
    v: i64,
    r: std::ops::RangeInclusive<i64>,
    e: CampaignError,
) -> Result<T> {
    T::try_from(v).ok().filter(|_| r.contains(&v)).ok_or(e)
}

/// Trimmed text of `min..=max` characters (chars, not bytes: names are Japanese).
fn text(raw: &str, min: usize, max: usize, e: CampaignError) -> Result<String> {
    let (t, n) = (raw.trim(), raw.trim().chars().count());
    (min..=max).contains(&n).then(|| t.to_owned()).ok_or(e)
}

/// Read-only accessors, so values can only come from `parse`. `narrow` is for
/// fields range-checked to 1..=1000 by `parse`, so its fallback is unreachable.
macro_rules! getters {
    (copy $($f:ident: $t:ty),+) => { $(pub fn $f(&self) -> $t { self.$f })+ };
    (ref $($f:ident: $t:ty),+) => { $(pub fn $f(&self) -> &$t { &self.$f })+ };
    (inner $($f:ident: $t:ty),+) => { $(pub fn $f(&self) -> $t { self.params.$f })+ };
    (narrow $($f:ident),+) => { $(pub fn $f(&self) -> i32 { i32::try_from(self.params.$f).unwrap_or(i32::MAX) })+ };
}
use getters;

#[cfg(test)]
pub(crate) mod tests {
    use chrono::{DateTime, Utc};

    use super::*;

    pub(crate) fn t(secs: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(secs, 0).expect("test timestamp in range")
    }

    /// Builds through the draft path, claim window opening at t(1000).
    /// `extra` holds JSON members overriding the defaults, e.g. `,"total_limit":0`.
    pub(crate) fn create(extra: &str) -> Result<NewCampaign> {
        let extra = format!(r#"{{"name":" Spring ","total_limit":5{extra}}}"#);
        // serde_json keeps the last of duplicate keys in a Value, so `extra` wins.
        let v: serde_json::Value =
            serde_json::from_str(&extra.replace("LONG", &"x".repeat(10_001))).unwrap();
        NewCampaign::parse(draft_from_json(v), t(1000))
    }

    /// The same field names as the API's request, without going through `web/`.
    pub(crate) fn draft_from_json(v: serde_json::Value) -> CampaignDraft {
        let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_owned);
        let i = |k: &str| v.get(k).and_then(|x| x.as_i64());
        CampaignDraft {
            name: s("name").unwrap_or_default(),
            description: s("description"),
            terms: s("terms"),
            discount: v
                .get("discount")
                .map(|d| serde_json::from_value(d.clone()).expect("discount shape")),
            rules: serde_json::from_value(v.clone()).expect("rules shape"),
            status: s("status"),
            signin: s("signin"),
            code_length: i("code_length"),
            code_prefix: s("code_prefix"),
            code_charset: s("code_charset"),
        }
    }
}
