//! Runs bulk code jobs (more than 10,000 codes). Every node looks for pending jobs; the
//! job's row lock makes one node run each, in one transaction (see
//! `Store::run_next_code_job`), so a node killed mid-job leaves it pending, never half made.

use std::time::Duration;

use crate::store::bulk_codes::IssueOutcome;
use crate::store::Store;

/// How often an idle node looks for jobs.
const POLL: Duration = Duration::from_secs(1);
/// Runs that fail on the database before a job is given up.
const MAX_ATTEMPTS: i32 = 5;

pub async fn run(store: Store) {
    loop {
        match store.run_next_code_job().await {
            Ok(Some(ran)) => {
                match ran.outcome {
                    Ok(IssueOutcome::Issued(batch)) => {
                        tracing::info!(job = %ran.id, codes = batch.codes.len(), "code job done")
                    }
                    Ok(refused) => {
                        let (code, message) = refused
                            .refusal()
                            .unwrap_or(("internal_error", String::new()));
                        tracing::info!(job = %ran.id, code, "code job refused");
                        if let Err(e) = store.fail_code_job(ran.id, code, &message).await {
                            tracing::warn!(error = %e, "cannot record a refused code job");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(job = %ran.id, error = %e, "code job failed; will retry");
                        if let Err(e) = store
                            .retry_code_job(ran.id, &e.to_string(), MAX_ATTEMPTS)
                            .await
                        {
                            tracing::warn!(error = %e, "cannot record a failed code job");
                        }
                        tokio::time::sleep(POLL).await;
                    }
                }
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "cannot look for code jobs"),
        }
        tokio::time::sleep(POLL).await;
    }
}
