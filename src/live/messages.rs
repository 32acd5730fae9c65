//! The JSON text frames of `/merchant/live`, as the dashboard pages read them.

use bytestring::ByteString;
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::domain::campaign::CampaignStatus;

/// A frame from the server. `type` names the variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Frame {
    /// On connect (and after falling behind): every campaign of the tenant.
    Snapshot { campaigns: Vec<CampaignSnapshot> },
    /// A campaign's counts changed; at most 10 a second per campaign per socket.
    Stats {
        campaign_id: Uuid,
        issued: i64,
        redeemed: i64,
        remaining: i64,
    },
    /// A coupon was used: the redemption feed.
    Redemption {
        campaign_id: Uuid,
        at: DateTime<Utc>,
        store: Option<String>,
        staff: Option<String>,
    },
    /// A campaign was activated, paused, resumed or ended.
    Campaign {
        campaign_id: Uuid,
        status: CampaignStatus,
    },
}

/// One campaign in a [`Frame::Snapshot`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CampaignSnapshot {
    pub id: Uuid,
    pub name: String,
    pub status: CampaignStatus,
    pub issued: i64,
    pub redeemed: i64,
    pub remaining: i64,
}

/// What the broker hands each socket of a tenant.
#[derive(Debug, Clone)]
pub enum Update {
    Frame(Encoded),
    /// The broker itself fell behind the engine: every socket takes a fresh snapshot.
    Resync,
}

impl Update {
    /// Encodes the frame once for all the tenant's sockets (a thousand dashboards share
    /// one JSON text; each socket only takes a reference to it).
    pub fn frame(frame: Frame) -> Update {
        let text = serde_json::to_string(&frame).unwrap_or_default();
        Update::Frame(Encoded {
            frame,
            text: text.into(),
        })
    }
}

/// A frame and its JSON text.
#[derive(Debug, Clone)]
pub struct Encoded {
    pub frame: Frame,
    pub text: ByteString,
}

/// A frame from the client. Only `{"type":"snapshot"}` (send me a fresh snapshot) is
/// understood; anything else closes the socket with a reason.
#[derive(Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    Snapshot,
}

impl ClientFrame {
    /// A text message from the dashboard page; None for anything not understood.
    pub fn parse(text: &str) -> Option<ClientFrame> {
        serde_json::from_str(text).ok()
    }
}
