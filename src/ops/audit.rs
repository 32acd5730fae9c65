//! `ecoupon audit verify`: walks the hash chain outside the database and names the first
//! row that does not fit, and the signed checkpoints retention leaves behind.

use chrono::{DateTime, SecondsFormat, Utc};

use super::keys::{self, InstallationKey};
use crate::domain::token::sha256;
use crate::store::{declared_erasures, ChainEvent, ChainHead, ChainRow, Checkpoint, Store};

/// Where a chain was found broken, and why.
#[derive(Debug, Clone)]
pub struct Break {
    pub id: Option<i64>,
    pub seq: i64,
    pub reason: String,
}

#[derive(Debug, Clone, Default)]
pub struct VerifyReport {
    pub rows: u64,
    pub erased: u64,
    pub first_seq: Option<i64>,
    pub last_seq: Option<i64>,
    /// The checkpoint the walk started from (after a retention cut).
    pub from_checkpoint: Option<i64>,
    pub broken: Option<Break>,
}

impl VerifyReport {
    pub fn intact(&self) -> bool {
        self.broken.is_none()
    }

    pub fn summary(&self) -> String {
        match &self.broken {
            None => {
                let from = match self.from_checkpoint {
                    Some(seq) => format!(" from the signed checkpoint at seq {seq}"),
                    None => String::new(),
                };
                format!(
                    "audit chain intact: {} rows{from} ({} erased by tenant purges)",
                    self.rows, self.erased
                )
            }
            Some(b) => {
                let row = match b.id {
                    Some(id) => format!("row id {id} (seq {})", b.seq),
                    None => format!("seq {}", b.seq),
                };
                format!("audit chain broken at {row}: {}", b.reason)
            }
        }
    }
}

/// The message a checkpoint's signature covers.
pub fn checkpoint_message(
    seq: i64,
    hash: &[u8],
    at: DateTime<Utc>,
    erased_cut: i64,
    declared_cut: i64,
) -> Vec<u8> {
    format!(
        "ecoupon audit checkpoint v1\nseq={seq}\nhash={}\nat={}\nerased_cut={erased_cut}\ndeclared_cut={declared_cut}\n",
        hex::encode(hash),
        at.to_rfc3339_opts(SecondsFormat::Micros, true)
    )
    .into_bytes()
}

struct Walk<'k> {
    key: &'k InstallationKey,
    head: Option<ChainHead>,
    checkpoints: Vec<Checkpoint>,
    prev: Option<(i64, Vec<u8>)>,
    /// Erasures declared by purge entries minus erased rows, over the cut prefix and the rest.
    balance: i64,
    report: VerifyReport,
}

impl Walk<'_> {
    fn fail(&mut self, row: Option<&ChainRow>, seq: i64, reason: impl Into<String>) -> bool {
        self.report.broken = Some(Break {
            id: row.map(|r| r.id),
            seq,
            reason: reason.into(),
        });
        false
    }

    /// Where the chain starts: genesis, or the checkpoint just before `first_seq`.
    fn start(&mut self, first_seq: i64, row: Option<&ChainRow>) -> bool {
        if first_seq == 1 {
            self.prev = Some((0, vec![0; 32]));
            return true;
        }
        let Some(cp) = self
            .checkpoints
            .iter()
            .find(|c| c.seq == first_seq - 1)
            .cloned()
        else {
            return self.fail(
                row,
                first_seq,
                format!(
                    "rows before seq {first_seq} are missing and no signed checkpoint covers them"
                ),
            );
        };
        let message = checkpoint_message(cp.seq, &cp.hash, cp.at, cp.erased_cut, cp.declared_cut);
        if cp.public_key != self.key.public_key() {
            return self.fail(
                row,
                first_seq,
                format!(
                    "the checkpoint at seq {} is signed by key {}, not this installation's {}",
                    cp.seq,
                    keys::show_key(&cp.public_key),
                    keys::show_key(&self.key.public_key())
                ),
            );
        }
        if !keys::verify(&cp.public_key, &message, &cp.signature) {
            return self.fail(
                row,
                first_seq,
                format!("the checkpoint at seq {} has a bad signature", cp.seq),
            );
        }
        self.balance += cp.declared_cut - cp.erased_cut;
        self.report.from_checkpoint = Some(cp.seq);
        self.prev = Some((cp.seq, cp.hash));
        true
    }

    fn row(&mut self, row: ChainRow) -> bool {
        if self.prev.is_none() && !self.start(row.seq, Some(&row)) {
            return false;
        }
        let (prev_seq, prev_hash) = self.prev.clone().expect("set by start");
        if row.seq != prev_seq + 1 {
            return self.fail(
                Some(&row),
                row.seq,
                format!("expected seq {} next: rows are missing", prev_seq + 1),
            );
        }
        if row.erased {
            self.report.erased += 1;
            self.balance -= 1;
        } else if sha256(row.canonical()) != row.content_hash {
            return self.fail(
                Some(&row),
                row.seq,
                "its content does not match its hash (changed after it was written)",
            );
        }
        let mut linked = prev_hash;
        linked.extend_from_slice(&row.content_hash);
        if sha256(&linked) != row.hash {
            return self.fail(
                Some(&row),
                row.seq,
                "its hash does not follow from the previous row's (changed, inserted or reordered)",
            );
        }
        if !row.erased {
            let detail = serde_json::from_str(&row.detail).unwrap_or_default();
            self.balance += declared_erasures(&row.action, &detail);
        }
        self.report.rows += 1;
        self.report.first_seq.get_or_insert(row.seq);
        self.report.last_seq = Some(row.seq);
        self.prev = Some((row.seq, row.hash));
        true
    }

    /// After the last row: the head must point at it, and erasures must balance.
    fn finish(&mut self) {
        if self.report.broken.is_some() {
            return;
        }
        let head = self.head.clone().expect("Start comes first");
        if self.prev.is_none() {
            if head.seq == 0 {
                return;
            }
            // Everything was cut by retention: the head must be the newest checkpoint.
            if !self.start(head.seq + 1, None) {
                return;
            }
        }
        let (seq, hash) = self.prev.clone().expect("set above");
        if head.seq != seq || head.hash != hash {
            let seq_shown = head.seq;
            self.fail(
                None,
                seq_shown,
                format!("the chain head says seq {seq_shown} but the last row is seq {seq}: rows at the end are missing or the head was changed"),
            );
            return;
        }
        if self.balance != 0 {
            self.fail(
                None,
                seq,
                format!(
                    "{} erased rows are not accounted for by tenant purges",
                    -self.balance
                ),
            );
        }
    }
}

/// Walks the whole chain from one database snapshot.
pub async fn verify(store: &Store, key: &InstallationKey) -> anyhow::Result<VerifyReport> {
    let mut walk = Walk {
        key,
        head: None,
        checkpoints: Vec::new(),
        prev: None,
        balance: 0,
        report: VerifyReport::default(),
    };
    store
        .walk_audit_chain(|event| match event {
            ChainEvent::Start { head, checkpoints } => {
                walk.head = Some(head);
                walk.checkpoints = checkpoints;
                true
            }
            ChainEvent::Row(row) => walk.row(*row),
        })
        .await
        .map_err(|e| anyhow::anyhow!("audit verify: {}", crate::store::describe_pg_error(&e)))?;
    walk.finish();
    Ok(walk.report)
}

/// Cuts audit rows older than `before` behind a signed checkpoint. Returns rows deleted.
pub async fn cut(
    store: &Store,
    key: &InstallationKey,
    before: DateTime<Utc>,
) -> anyhow::Result<u64> {
    let Some(cut) = store.audit_cut(before).await? else {
        return Ok(0);
    };
    let previous = store.audit_checkpoints().await?.into_iter().next_back();
    let (erased_before, declared_before) = previous
        .as_ref()
        .map_or((0, 0), |c| (c.erased_cut, c.declared_cut));
    let erased_cut = erased_before + cut.erased;
    let declared_cut = declared_before + cut.declared;
    let message = checkpoint_message(cut.seq, &cut.hash, cut.at, erased_cut, declared_cut);
    let checkpoint = Checkpoint {
        seq: cut.seq,
        hash: cut.hash,
        at: cut.at,
        erased_cut,
        declared_cut,
        public_key: key.public_key().to_vec(),
        signature: key.sign(&message).to_vec(),
    };
    Ok(store.cut_audit_log(&checkpoint).await?)
}
