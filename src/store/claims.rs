//! Exactly-once redemption (with the check code, the store, the staff member and the
//! consumer's single-use token, all judged under the coupon's row lock), and what the claim
//! path reads besides its batch write (`claim_batch.rs`).

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{Store, StoreError};
use crate::domain::campaign::Discount;
use crate::domain::redemption::{judge_redemption, CouponState, RedeemRefusal};
use crate::domain::verification::{CheckCode, CheckCodeAttempt, CheckCodePolicy};

#[derive(Debug, Clone)]
pub struct RedemptionRecord {
    pub id: Uuid,
    pub coupon_id: Uuid,
    pub campaign_id: Uuid,
    pub redeemed_at: DateTime<Utc>,
    pub uses_left: i32,
    /// The store it was recorded at: chosen on the staff screen, or the API's free text
    /// matched onto one.
    pub store_id: Option<Uuid>,
}

/// Who redeems, where, and with what proof.
#[derive(Debug, Default, Clone, Copy)]
pub struct RedeemInput<'a> {
    /// Free text as the API received it; kept as given, and matched onto one of the tenant's
    /// stores by code (any case) or exact name.
    pub store_text: Option<&'a str>,
    /// A store chosen on the staff screen; ignored unless it is the tenant's.
    pub store_id: Option<Uuid>,
    pub staff: Option<&'a str>,
    pub staff_user_id: Option<Uuid>,
    pub check_policy: CheckCodePolicy,
    pub check_code: Option<&'a CheckCode>,
    /// The coupon page's code step, in seconds.
    pub check_step_seconds: u64,
    /// SHA-256 of the consumer's confirm-form token: spent with the use, so a second
    /// submit of the same form cannot spend a second use.
    pub use_token_hash: Option<&'a [u8]>,
}

#[derive(Debug)]
pub enum RedeemOutcome {
    Redeemed(RedemptionRecord),
    UnknownCode,
    /// Not redeemed, and why (judged at the database's time, under the row lock).
    Refused(RedeemRefusal),
    /// The confirm form's token was already spent (a double submit): nothing changed.
    TokenUsed,
    /// The token is unknown, expired or for another coupon.
    TokenInvalid,
}

/// A coupon as the staff screen describes it after an attempt.
#[derive(Debug, Clone)]
pub struct StaffCouponView {
    pub campaign_name: String,
    pub discount: Option<Discount>,
    pub uses_left: i32,
    pub uses_per_coupon: i32,
    pub valid_from: DateTime<Utc>,
    pub expires_at: Option<DateTime<Utc>>,
    /// The latest use not undone: when, and where (the store's name, else the free text).
    pub last_used_at: Option<DateTime<Utc>>,
    pub last_used_store: Option<String>,
}

#[derive(Debug)]
pub enum UndoOutcome {
    Undone {
        coupon_id: Uuid,
        campaign_id: Uuid,
        uses_left: i32,
    },
    NotFound,
    AlreadyUndone,
    WindowPassed,
}

impl Store {
    /// The seqs a consumer holds on a campaign (for an actor that has not seen them).
    #[tracing::instrument(level = "debug", skip_all, fields(campaign_id = %campaign_id))]
    pub async fn consumer_seqs(
        &self,
        campaign_id: Uuid,
        consumer: &str,
    ) -> Result<Vec<i32>, StoreError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq FROM coupons WHERE campaign_id = $1 AND consumer = $2 ORDER BY seq",
                &[&campaign_id, &consumer],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    /// Uses one use of a coupon, exactly once however many requests race: the row lock
    /// serialises them, and each judges (state, check code, token) what the previous one
    /// left. Nothing is written unless everything passes.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn redeem(
        &self,
        tenant_id: Uuid,
        code: &str,
        input: &RedeemInput<'_>,
    ) -> Result<RedeemOutcome, StoreError> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let lock = tx
            .prepare_cached(
                "SELECT c.id, c.campaign_id, c.uses_left, c.valid_from, c.expires_at, c.secret,
                        t.require_check_code, now()
                 FROM coupons c JOIN tenants t ON t.id = c.tenant_id
                 WHERE c.tenant_id = $1 AND c.code = $2 FOR UPDATE OF c",
            )
            .await?;
        let Some(row) = tx.query_opt(&lock, &[&tenant_id, &code]).await? else {
            return Ok(RedeemOutcome::UnknownCode);
        };
        let coupon_id: Uuid = row.get(0);
        let campaign_id: Uuid = row.get(1);
        let state = CouponState {
            uses_left: row.get(2),
            valid_from: row.get(3),
            expires_at: row.get(4),
        };
        let secret: Vec<u8> = row.get(5);
        let now: DateTime<Utc> = row.get(7);
        if let Some(hash) = input.use_token_hash {
            let spent = tx
                .execute(
                    "UPDATE coupon_use_tokens SET used_at = now()
                     WHERE token_hash = $1 AND coupon_id = $2 AND used_at IS NULL AND expires_at > now()",
                    &[&hash, &coupon_id],
                )
                .await?;
            if spent == 0 {
                let used = tx
                    .query_opt(
                        "SELECT used_at IS NOT NULL FROM coupon_use_tokens WHERE token_hash = $1 AND coupon_id = $2",
                        &[&hash, &coupon_id],
                    )
                    .await?
                    .is_some_and(|r| r.get(0));
                return Ok(if used {
                    RedeemOutcome::TokenUsed
                } else {
                    RedeemOutcome::TokenInvalid
                });
            }
        }
        let check = CheckCodeAttempt {
            required: input.check_policy.requires(row.get(6)),
            given: input.check_code,
            secret: &secret,
            step_seconds: input.check_step_seconds,
        };
        if let Err(refusal) = judge_redemption(&state, now, &check) {
            // Dropping the transaction rolls back the token, so the form can be sent again.
            return Ok(RedeemOutcome::Refused(refusal));
        }
        let uses_left: i32 = tx
            .query_one(
                "UPDATE coupons SET uses_left = uses_left - 1 WHERE id = $1 RETURNING uses_left",
                &[&coupon_id],
            )
            .await?
            .get(0);
        let redemption_id = Uuid::now_v7();
        let record = tx
            .query_one(
                "WITH chosen AS (
                     SELECT id, name FROM stores WHERE id = $7 AND tenant_id = $2
                 ), matched AS (
                     SELECT id FROM stores
                     WHERE tenant_id = $2 AND $5::text IS NOT NULL AND (code = upper($5::text) OR name = $5::text)
                     ORDER BY code = upper($5::text) DESC, created_at LIMIT 1
                 )
                 INSERT INTO redemptions (id, tenant_id, campaign_id, coupon_id, store, staff, store_id, staff_user_id)
                 VALUES ($1, $2, $3, $4, COALESCE($5::text, (SELECT name FROM chosen)), $6,
                         COALESCE((SELECT id FROM chosen), (SELECT id FROM matched)), $8)
                 RETURNING redeemed_at, store_id, store",
                &[
                    &redemption_id,
                    &tenant_id,
                    &campaign_id,
                    &coupon_id,
                    &input.store_text,
                    &input.staff,
                    &input.store_id,
                    &input.staff_user_id,
                ],
            )
            .await?;
        let redeemed_at: DateTime<Utc> = record.get(0);
        let store_id: Option<Uuid> = record.get(1);
        let store: Option<String> = record.get(2);
        let event = serde_json::json!({
            "redemption_id": redemption_id,
            "coupon_id": coupon_id,
            "campaign_id": campaign_id,
            "code": code,
            "redeemed_at": redeemed_at,
            "uses_left": uses_left,
            "store": store,
            "store_id": store_id,
            "staff": input.staff,
        });
        super::webhooks::enqueue(
            &tx,
            tenant_id,
            crate::domain::webhook::COUPON_REDEEMED,
            &event,
        )
        .await?;
        tx.commit().await?;
        Ok(RedeemOutcome::Redeemed(RedemptionRecord {
            id: redemption_id,
            coupon_id,
            campaign_id,
            redeemed_at,
            uses_left,
            store_id,
        }))
    }

    /// The coupon with `code` as staff are told about it; another tenant's is None.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn staff_coupon_view(
        &self,
        tenant_id: Uuid,
        code: &str,
    ) -> Result<Option<StaffCouponView>, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT k.name, k.discount, c.uses_left, k.uses_per_coupon, c.valid_from, c.expires_at,
                        last.redeemed_at, last.store_name
                 FROM coupons c JOIN campaigns k ON k.id = c.campaign_id
                 LEFT JOIN LATERAL (
                     SELECT r.redeemed_at, COALESCE(s.name, r.store) AS store_name
                     FROM redemptions r LEFT JOIN stores s ON s.id = r.store_id
                     WHERE r.coupon_id = c.id AND r.undone_at IS NULL
                     ORDER BY r.redeemed_at DESC LIMIT 1
                 ) last ON true
                 WHERE c.tenant_id = $1 AND c.code = $2",
                &[&tenant_id, &code],
            )
            .await?;
        let Some(r) = row else { return Ok(None) };
        // An unreadable discount must not hide the answer from staff: log it, show none.
        let discount = r.get::<_, Option<serde_json::Value>>(1).and_then(|v| {
            match serde_json::from_value::<Discount>(v) {
                Ok(d) => Some(d),
                Err(e) => {
                    tracing::error!(error = %e, "stored discount does not parse");
                    None
                }
            }
        });
        Ok(Some(StaffCouponView {
            campaign_name: r.get(0),
            discount,
            uses_left: r.get(2),
            uses_per_coupon: r.get(3),
            valid_from: r.get(4),
            expires_at: r.get(5),
            last_used_at: r.get(6),
            last_used_store: r.get(7),
        }))
    }

    /// Whether the tenant requires the check code on API redemptions.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id))]
    pub async fn tenant_requires_check_code(&self, tenant_id: Uuid) -> Result<bool, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT require_check_code FROM tenants WHERE id = $1",
                &[&tenant_id],
            )
            .await?;
        Ok(row.is_some_and(|r| r.get(0)))
    }

    /// Undoes a redemption within `window_secs` of it, giving the use back.
    #[tracing::instrument(level = "debug", skip_all, fields(tenant_id = %tenant_id, id = %id))]
    pub async fn undo_redemption(
        &self,
        tenant_id: Uuid,
        id: Uuid,
        window_secs: f64,
    ) -> Result<UndoOutcome, StoreError> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "WITH r AS (
                     SELECT id, coupon_id, redeemed_at, undone_at FROM redemptions
                     WHERE id = $1 AND tenant_id = $2 FOR UPDATE
                 ), undone AS (
                     UPDATE redemptions x SET undone_at = now() FROM r
                     WHERE x.id = r.id AND r.undone_at IS NULL AND now() - r.redeemed_at <= make_interval(secs => $3)
                     RETURNING x.coupon_id
                 ), restored AS (
                     UPDATE coupons SET uses_left = uses_left + 1 WHERE id IN (SELECT coupon_id FROM undone)
                     RETURNING id, campaign_id, uses_left, code
                 ), hooked AS (
                     INSERT INTO webhook_deliveries (endpoint_id, tenant_id, event_type, data)
                     SELECT e.id, $2, 'redemption.undone',
                            jsonb_build_object('redemption_id', $1::uuid, 'coupon_id', x.id,
                                               'campaign_id', x.campaign_id, 'code', x.code,
                                               'uses_left', x.uses_left, 'undone_at', now())
                     FROM restored x JOIN webhook_endpoints e
                          ON e.tenant_id = $2 AND 'redemption.undone' = ANY(e.events)
                 )
                 SELECT r.undone_at IS NOT NULL, (SELECT id FROM restored), (SELECT campaign_id FROM restored),
                        (SELECT uses_left FROM restored)
                 FROM r",
                &[&id, &tenant_id, &window_secs],
            )
            .await?;
        let Some(row) = row else {
            return Ok(UndoOutcome::NotFound);
        };
        let already: bool = row.get(0);
        let coupon: Option<Uuid> = row.get(1);
        Ok(match (already, coupon) {
            (true, _) => UndoOutcome::AlreadyUndone,
            (false, Some(coupon_id)) => UndoOutcome::Undone {
                coupon_id,
                campaign_id: row.get(2),
                uses_left: row.get(3),
            },
            (false, None) => UndoOutcome::WindowPassed,
        })
    }
}
