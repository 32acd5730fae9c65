//! Every way campaign input can be wrong. The codes are part of the API contract.

use super::status::{CampaignStatus, StatusAction};
use crate::domain::coded::coded_enum;

coded_enum! {
    #[derive(Eq)]
    pub enum CampaignError {
        InvalidName => "invalid_name", "name must be 1 to 200 characters after trimming";
        InvalidDescription => "invalid_description", "description must be at most 5000 characters";
        InvalidTerms => "invalid_terms", "terms must be at most 10000 characters";
        InvalidDiscountAmount => "invalid_discount_amount", "discount.amount must be between 1 and 10000000";
        InvalidDiscountPercent => "invalid_discount_percent", "discount.percent must be between 1 and 100";
        InvalidDiscountText { field: &'static str } => "invalid_discount_text",
            "discount.{field} must be 1 to 200 characters after trimming";
        InvalidTotalLimit => "invalid_total_limit", "total_limit must be between 1 and 10000000";
        InvalidPerConsumerLimit => "invalid_per_consumer_limit", "per_consumer_limit must be between 1 and 1000";
        InvalidClaimWindow => "invalid_claim_window", "claim_ends_at must be later than claim_starts_at";
        InvalidUseWindow => "invalid_use_window", "use_ends_at must be later than use_starts_at";
        InvalidValidFor => "invalid_valid_for", "valid_for_seconds must be between 60 and 315360000 (3650 days)";
        InvalidUsesPerCoupon => "invalid_uses_per_coupon", "uses_per_coupon must be between 1 and 1000";
        InvalidWinProbability => "invalid_win_probability", "win_probability must be greater than 0 and at most 1";
        InvalidStatus => "invalid_status", "status must be one of draft, active, paused, ended";
        InvalidInitialStatus => "invalid_initial_status", "status must be draft or active at creation";
        InvalidAction => "invalid_action", "action must be one of activate, pause, resume, end";
        InvalidSignin => "invalid_signin", "signin must be none or required";
        InvalidCodeLength => "invalid_code_length", "code_length must be between 6 and 32";
        InvalidCodePrefix => "invalid_code_prefix", "code_prefix must be at most 8 characters of A-Z and 0-9";
        InvalidCodeCharset => "invalid_code_charset",
            "code_charset must be unambiguous, digits, or 10 to 64 distinct characters from A-Z and 0-9";
        InvalidTransition { from: CampaignStatus, action: StatusAction } => "invalid_transition",
            "cannot {action} a campaign whose status is {from}";
        LimitBelowIssued { new_total: i64, issued: i64 } => "limit_below_issued",
            "total_limit {new_total} is below the {issued} coupons already issued";
    }
}

impl CampaignError {
    /// The input field the error is about, so a form can show the message next to it.
    pub fn field(&self) -> &'static str {
        use CampaignError::*;
        match self {
            InvalidName => "name",
            InvalidDescription => "description",
            InvalidTerms => "terms",
            InvalidDiscountAmount | InvalidDiscountPercent | InvalidDiscountText { .. } => {
                "discount"
            }
            InvalidTotalLimit | LimitBelowIssued { .. } => "total_limit",
            InvalidPerConsumerLimit => "per_consumer_limit",
            InvalidClaimWindow => "claim_ends_at",
            InvalidUseWindow => "use_ends_at",
            InvalidValidFor => "valid_for_seconds",
            InvalidUsesPerCoupon => "uses_per_coupon",
            InvalidWinProbability => "win_probability",
            InvalidStatus | InvalidInitialStatus | InvalidAction | InvalidTransition { .. } => {
                "status"
            }
            InvalidSignin => "signin",
            InvalidCodeLength => "code_length",
            InvalidCodePrefix => "code_prefix",
            InvalidCodeCharset => "code_charset",
        }
    }
}
