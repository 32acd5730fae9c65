//! The node's committer writes several campaigns' batches in one statement
//! (src/engine/committer.rs). Sharing a commit must change nothing a campaign promises, and
//! one campaign's trouble must not fail the others it shares a statement with.

use futures_util::future::join_all;
use serde_json::json;

use crate::helpers::{spawn_app, TestDatabase};
use crate::invariants::{check_invariants, Acked};

/// Makes every claim-writing statement take 20 ms, so that batches queue behind the
/// running ones and the committer has several campaigns' batches to put together (on a
/// fast machine they might otherwise each find an idle slot).
async fn slow_writes(db: &TestDatabase) {
    db.client()
        .await
        .batch_execute(
            "CREATE FUNCTION slow_write() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN PERFORM pg_sleep(0.02); RETURN NULL; END $$;
             CREATE TRIGGER slow BEFORE INSERT ON coupons
                 FOR EACH STATEMENT EXECUTE FUNCTION slow_write();",
        )
        .await
        .unwrap();
}

/// Many campaigns claimed at once, some past their stock: every limit holds, every 201 is
/// stored, and the claims really did share commits (rows of several campaigns written by
/// one transaction carry the same `xmin`).
#[actix_web::test]
async fn many_campaigns_claimed_at_once_share_commits_and_keep_every_limit() {
    let app = spawn_app().await;
    let mut campaigns = Vec::new();
    for i in 0..40 {
        let id = app
            .create_campaign_id(
                json!({ "name": format!("Sale {i}"), "total_limit": 30, "status": "active" }),
            )
            .await;
        campaigns.push(id);
    }
    slow_writes(&app.db).await;
    // 40 claims per campaign against a limit of 30, all in flight together.
    let claims = (0..40).flat_map(|n| {
        campaigns
            .iter()
            .map(move |c| (c.clone(), format!("member-{n}")))
    });
    let answers = join_all(claims.map(|(campaign, consumer)| {
        let app = &app;
        async move {
            let (status, body) = app.claim(&campaign, &consumer).await;
            (campaign, consumer, status, body)
        }
    }))
    .await;

    for campaign in &campaigns {
        let mine: Vec<_> = answers.iter().filter(|a| &a.0 == campaign).collect();
        let acked: Vec<Acked> = mine
            .iter()
            .filter(|a| a.2 == 201)
            .map(|a| Acked::from_body(&a.1, &a.3))
            .collect();
        for (_, _, status, body) in &mine {
            assert!(
                *status == 201 || (*status == 409 && body["error"]["code"] == "sold_out"),
                "a claim got {status} {body}"
            );
        }
        assert_eq!(
            acked.len(),
            30,
            "campaign {campaign} sells exactly its stock"
        );
        let held = check_invariants(&app.db, campaign, &acked).await;
        assert_eq!(held.issued, 30);
    }

    let client = app.db.client().await;
    let shared: i64 = client
        .query_one(
            "SELECT count(*) FROM (
                 SELECT xmin::text FROM coupons WHERE tenant_id = $1
                 GROUP BY xmin::text HAVING count(DISTINCT campaign_id) > 1) s",
            &[&app.tenant_id],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        shared > 0,
        "no commit carried more than one campaign's claims"
    );
}

/// A campaign whose rows the database refuses (here a trigger; in life a campaign deleted
/// under its actor) gets `busy` for its own claims, while the campaign sharing its
/// statements sells every claim.
#[actix_web::test]
async fn a_campaign_the_database_refuses_does_not_fail_the_campaigns_sharing_its_commit() {
    let app = spawn_app().await;
    let refused = app
        .create_campaign_id(json!({ "name": "Refused", "total_limit": 1000, "status": "active" }))
        .await;
    let fine = app
        .create_campaign_id(json!({ "name": "Fine", "total_limit": 1000, "status": "active" }))
        .await;
    // Both actors awake and holding stock before the trouble starts.
    assert_eq!(app.claim(&refused, "warm").await.0, 201);
    assert_eq!(app.claim(&fine, "warm").await.0, 201);
    slow_writes(&app.db).await;
    let refused_uuid: uuid::Uuid = refused.parse().unwrap();
    let client = app.db.client().await;
    client
        .batch_execute(&format!(
            "CREATE FUNCTION refuse_claims() RETURNS trigger LANGUAGE plpgsql AS
                 $$ BEGIN RAISE EXCEPTION 'refused by the test'; END $$;
             CREATE TRIGGER refuse BEFORE INSERT ON coupons FOR EACH ROW
                 WHEN (NEW.campaign_id = '{refused_uuid}') EXECUTE FUNCTION refuse_claims();"
        ))
        .await
        .unwrap();

    let claims = (0..200).flat_map(|n| [(refused.clone(), n), (fine.clone(), n)]);
    let answers = join_all(claims.map(|(campaign, n)| {
        let app = &app;
        async move {
            let consumer = format!("member-{n}");
            let (status, body) = app.claim(&campaign, &consumer).await;
            (campaign, consumer, status, body)
        }
    }))
    .await;

    let mut acked = Vec::new();
    for (campaign, consumer, status, body) in &answers {
        if *campaign == fine {
            assert_eq!(
                *status, 201,
                "the fine campaign's claim got {status} {body}"
            );
            acked.push(Acked::from_body(consumer, body));
        } else {
            assert_eq!(
                *status, 503,
                "the refused campaign's claim got {status} {body}"
            );
            assert_eq!(body["error"]["code"], "busy");
        }
    }
    check_invariants(&app.db, &fine, &acked).await;

    // The refused campaign lost nothing: with the trigger gone it sells again.
    client
        .batch_execute("DROP TRIGGER refuse ON coupons")
        .await
        .unwrap();
    let (status, body) = app.claim(&refused, "after").await;
    assert_eq!(status, 201, "{body}");
    check_invariants(&app.db, &refused, &[]).await;
}
