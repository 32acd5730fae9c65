-- A claim whose answer was lost (503 outcome_unknown) leaves its key held rather than
-- freed: `unsettled_id` is the coupon id the engine wrote the claim under, and
-- `unsettled_at` when the answer was given up on. A retry with the key looks that coupon up:
-- found, it answers with it; absent once the write can no longer land (statement_timeout
-- after `unsettled_at`), the claim runs again. So a till that lost the answer never
-- retries into consumer_limit_reached.
ALTER TABLE idempotency_keys
    ADD COLUMN unsettled_id uuid,
    ADD COLUMN unsettled_at timestamptz;
