//! What the coupon gives.

use serde::{Deserialize, Serialize};

use super::{ranged, text, CampaignError, Result};

/// Serialized through [`RawDiscount`] so stored JSON is re-validated on the way back in
/// and the wire shape stays `{"kind": ..}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "RawDiscount", try_from = "RawDiscount")]
pub enum Discount {
    AmountOffYen(u32),
    PercentOff(u8),
    FreeItem(String),
    FreeText(String),
}

/// Unvalidated wire form. Numbers are i64 so that out-of-range input gets our
/// field-specific message instead of a generic serde overflow error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = Discount)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum RawDiscount {
    AmountOffYen { amount: i64 },
    PercentOff { percent: i64 },
    FreeItem { item: String },
    FreeText { text: String },
}

impl Discount {
    pub fn parse(raw: RawDiscount) -> Result<Discount> {
        use CampaignError as E;
        let bad_text = |field| E::InvalidDiscountText { field };
        Ok(match raw {
            RawDiscount::AmountOffYen { amount } => {
                Discount::AmountOffYen(ranged(amount, 1..=10_000_000, E::InvalidDiscountAmount)?)
            }
            RawDiscount::PercentOff { percent } => {
                Discount::PercentOff(ranged(percent, 1..=100, E::InvalidDiscountPercent)?)
            }
            RawDiscount::FreeItem { item } => {
                Discount::FreeItem(text(&item, 1, 200, bad_text("item"))?)
            }
            RawDiscount::FreeText { text: t } => {
                Discount::FreeText(text(&t, 1, 200, bad_text("text"))?)
            }
        })
    }
}

impl TryFrom<RawDiscount> for Discount {
    type Error = CampaignError;
    fn try_from(raw: RawDiscount) -> Result<Self, Self::Error> {
        Discount::parse(raw)
    }
}

impl From<Discount> for RawDiscount {
    fn from(d: Discount) -> Self {
        match d {
            Discount::AmountOffYen(a) => Self::AmountOffYen { amount: a.into() },
            Discount::PercentOff(p) => Self::PercentOff { percent: p.into() },
            Discount::FreeItem(item) => Self::FreeItem { item },
            Discount::FreeText(text) => Self::FreeText { text },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[rustfmt::skip]
    const BAD_DISCOUNTS: &[(&str, &str)] = &[
        (r#"{"kind":"amount_off_yen","amount":0}"#, "invalid_discount_amount"),
        (r#"{"kind":"amount_off_yen","amount":10000001}"#, "invalid_discount_amount"),
        (r#"{"kind":"percent_off","percent":101}"#, "invalid_discount_percent"),
        (r#"{"kind":"free_item","item":"  "}"#, "invalid_discount_text"),
        (r#"{"kind":"free_text","text":"LONG"}"#, "invalid_discount_text"),
    ];

    #[test]
    fn discount_wire_shape_round_trips_and_validates() {
        #[rustfmt::skip]
        let good = [r#"{"kind":"amount_off_yen","amount":500}"#, r#"{"kind":"percent_off","percent":10}"#,
                    r#"{"kind":"free_item","item":"Coffee"}"#, r#"{"kind":"free_text","text":"Free refill"}"#];
        for json in good {
            let d: Discount = serde_json::from_str(json).unwrap();
            assert_eq!(serde_json::to_string(&d).unwrap(), json);
        }
        for (json, want) in BAD_DISCOUNTS {
            let raw = serde_json::from_str(&json.replace("LONG", &"x".repeat(201))).unwrap();
            assert_eq!(Discount::parse(raw).unwrap_err().code(), *want, "{json}");
        }
        let extra = r#"{"kind":"percent_off","percent":5,"x":1}"#;
        assert!(serde_json::from_str::<RawDiscount>(extra).is_err());
    }
}
