//! The expected "no" answers to a claim. These are business as usual, not faults.

use crate::domain::coded::coded_enum;

coded_enum! {
    /// Expected, user-facing outcomes of a claim attempt, not faults.
    #[derive(Copy, Eq, Hash)]
    pub enum ClaimRejection {
        NotStarted => "not_started", "the claim period has not started yet";
        Ended => "ended", "the campaign has ended";
        Paused => "paused", "the campaign is paused";
        SoldOut => "sold_out", "all coupons have been claimed";
        ConsumerLimitReached => "consumer_limit_reached", "the per-consumer claim limit has been reached";
        LotteryLost => "lottery_lost", "not a winner this time";
        NotActive => "not_active", "the campaign is not active";
    }
}
