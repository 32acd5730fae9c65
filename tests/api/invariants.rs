//! The engine's promises, checked against the database after a fault. Every fault test ends
//! with [`check_invariants`] (what must hold at any moment) and, once the sale is quiet,
//! [`check_settled`] (counters, stats and the database agree; no stock stranded).

use std::collections::HashMap;
use std::time::Duration;

use crate::helpers::{eventually, TestApp, TestDatabase};

/// A claim answered 201: what the client was promised.
#[derive(Debug, Clone)]
pub struct Acked {
    pub coupon_id: String,
    pub code: String,
    pub consumer: String,
}

impl Acked {
    /// The promise in a 201 claim body.
    pub fn from_body(consumer: &str, body: &serde_json::Value) -> Acked {
        Acked {
            coupon_id: body["coupon"]["id"]
                .as_str()
                .expect("coupon.id")
                .to_string(),
            code: body["coupon"]["code"]
                .as_str()
                .expect("coupon.code")
                .to_string(),
            consumer: consumer.to_string(),
        }
    }
}

/// What the database holds for a campaign, as the checks found it.
#[derive(Debug, Clone, Copy)]
pub struct Holdings {
    pub issued: i64,
    pub total_limit: i64,
}

/// Checks what must hold at any moment, whatever failed:
/// - issued ≤ allocated ≤ limit, and allocated = issued + what live leases have not used
///   (no stock lost or double-counted; released leases returned exactly their unused units);
/// - every acknowledged claim is in the database, with the code the client got;
/// - no coupon used more than its uses, and uses_left agrees with its redemptions;
/// - no consumer holds more than the per-consumer limit.
pub async fn check_invariants(db: &TestDatabase, campaign: &str, acked: &[Acked]) -> Holdings {
    let mut conn = db.client().await;
    // One snapshot for every check: the sale may still be moving.
    let client = conn
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
        .unwrap();
    let c = client
        .query_one(
            "SELECT total_limit, allocated, per_consumer_limit, uses_per_coupon,
                    (SELECT count(*) FROM coupons WHERE campaign_id = k.id AND won)
             FROM campaigns k WHERE id = $1::text::uuid",
            &[&campaign],
        )
        .await
        .unwrap();
    let (limit, allocated, per_consumer, uses): (i64, i64, i32, i32) =
        (c.get(0), c.get(1), c.get(2), c.get(3));
    let issued: i64 = c.get(4);
    assert!(
        issued <= limit,
        "over-issued: {issued} coupons, limit {limit}"
    );
    assert!(
        issued <= allocated && allocated <= limit,
        "issued {issued} ≤ allocated {allocated} ≤ limit {limit}"
    );

    let leases = client
        .query(
            "SELECT l.id::text, l.size, l.released_at IS NOT NULL, l.returned,
                    (SELECT count(*) FROM coupons x WHERE x.lease_id = l.id)
             FROM campaign_leases l WHERE l.campaign_id = $1::text::uuid",
            &[&campaign],
        )
        .await
        .unwrap();
    let (mut live_unused, mut held) = (0i64, 0i64);
    for l in &leases {
        let (id, size, released, returned, used): (String, i64, bool, i64, i64) =
            (l.get(0), l.get(1), l.get(2), l.get(3), l.get(4));
        assert!(used <= size, "lease {id}: {used} coupons on {size} units");
        if released {
            assert_eq!(
                returned,
                size - used,
                "released lease {id} returned what it did not use"
            );
            held += used;
        } else {
            live_unused += size - used;
            held += size;
        }
    }
    assert_eq!(
        allocated, held,
        "allocated = units held by live leases + units used by released ones"
    );
    let orphans: i64 = client
        .query_one(
            "SELECT count(*) FROM coupons c WHERE c.campaign_id = $1::text::uuid AND c.won
               AND NOT EXISTS (SELECT 1 FROM campaign_leases l WHERE l.id = c.lease_id)",
            &[&campaign],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orphans, 0, "every coupon is under a lease of its campaign");
    assert_eq!(allocated, issued + live_unused, "no stock stranded or lost");

    let ids: Vec<&str> = acked.iter().map(|a| a.coupon_id.as_str()).collect();
    let stored: HashMap<String, (String, String)> = client
        .query(
            "SELECT id::text, code, regexp_replace(consumer, '^api:', '') FROM coupons WHERE id::text = ANY($1)",
            &[&ids],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), (r.get(1), r.get(2))))
        .collect();
    for a in acked {
        let Some((code, consumer)) = stored.get(&a.coupon_id) else {
            panic!("acknowledged claim {} is not in the database", a.coupon_id);
        };
        assert_eq!(
            (code, consumer),
            (&a.code, &a.consumer),
            "stored as promised"
        );
    }

    let overused: i64 = client
        .query_one(
            "SELECT count(*) FROM coupons c WHERE c.campaign_id = $1::text::uuid AND c.won AND (
                 c.uses_left < 0 OR c.uses_left + (SELECT count(*) FROM redemptions r
                     WHERE r.coupon_id = c.id AND r.undone_at IS NULL) <> $2)",
            &[&campaign, &(uses as i64)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        overused, 0,
        "no coupon used more than its {uses} uses; uses_left agrees"
    );

    let over_limit: i64 = client
        .query_one(
            "SELECT count(*) FROM (SELECT consumer FROM coupons WHERE campaign_id = $1::text::uuid
                 GROUP BY consumer HAVING count(*) > $2 OR max(seq) > $2) x",
            &[&campaign, &(per_consumer as i64)],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        over_limit, 0,
        "no consumer over the per-consumer limit {per_consumer}"
    );
    Holdings {
        issued,
        total_limit: limit,
    }
}

/// Once the sale is quiet: the invariants, and the campaign's API stats (the node's
/// counters) equal the database within `within`.
pub async fn check_settled(
    app: &TestApp,
    campaign: &str,
    acked: &[Acked],
    within: Duration,
) -> Holdings {
    let held = check_invariants(&app.db, campaign, acked).await;
    eventually(within, "the API's stats equal the database", async || {
        let res = app
            .get(&format!("/api/v1/campaigns/{campaign}"))
            .send()
            .await
            .ok()?;
        let body: serde_json::Value = res.json().await.ok()?;
        let db = check_invariants(&app.db, campaign, acked).await;
        let (issued, remaining) = (
            body["stats"]["issued"].as_i64()?,
            body["stats"]["remaining"].as_i64()?,
        );
        (issued == db.issued && remaining == db.total_limit - db.issued).then_some(())
    })
    .await;
    held
}
