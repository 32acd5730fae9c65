//! One actor per socket: reads its tenant's updates every [`TICK`], coalescing stats to
//! the last value per campaign, so a socket gets at most 10 stats a second per campaign.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Handler, StreamHandler, WrapFuture,
};
use actix_web_actors::ws::{self, CloseCode, CloseReason};
use bytestring::ByteString;
use tokio::sync::broadcast::{self, error::TryRecvError};
use uuid::Uuid;

use super::broker::{Broker, Revoked, OUTBOX};
use super::messages::{ClientFrame, Encoded, Frame, Update};

/// How often a socket's updates are read and sent (so stats are at most 10/s per campaign).
pub const TICK: Duration = Duration::from_millis(100);
pub const PING_EVERY: Duration = Duration::from_secs(5);
/// A client heard nothing from (no pong, no frame) for this long is closed.
pub const SILENT_LIMIT: Duration = Duration::from_secs(10);
/// The largest client message accepted.
pub const MAX_CLIENT_MESSAGE: usize = 4 * 1024;
/// Frames above this are refused by the codec itself (the limit above closes with a reason).
pub const READ_FRAME_LIMIT: usize = 64 * 1024;
/// Client messages per second beyond which the socket is closed.
pub const FLOOD_LIMIT: u32 = 20;

pub struct LiveSession {
    broker: Broker,
    tenant_id: Uuid,
    user_id: Uuid,
    session_hash: Vec<u8>,
    updates: Option<broadcast::Receiver<Arc<Update>>>,
    /// Latest stats per campaign not yet sent (their encoded text).
    stats: HashMap<Uuid, ByteString>,
    /// Redemption and status frames not yet sent, in order.
    others: Vec<Encoded>,
    snapshot_pending: bool,
    snapshot_in_flight: bool,
    watch: Option<u64>,
    heard: Instant,
    window: Instant,
    in_window: u32,
}

impl LiveSession {
    pub fn new(
        broker: Broker,
        tenant_id: Uuid,
        user_id: Uuid,
        session_hash: Vec<u8>,
    ) -> LiveSession {
        LiveSession {
            broker,
            tenant_id,
            user_id,
            session_hash,
            updates: None,
            stats: HashMap::new(),
            others: Vec::new(),
            snapshot_pending: true,
            snapshot_in_flight: false,
            watch: None,
            heard: Instant::now(),
            window: Instant::now(),
            in_window: 0,
        }
    }

    fn close(ctx: &mut ws::WebsocketContext<Self>, code: CloseCode, reason: &str) {
        ctx.close(Some(CloseReason {
            code,
            description: Some(reason.to_owned()),
        }));
        ctx.stop();
    }

    fn send(ctx: &mut ws::WebsocketContext<Self>, frame: &Frame) {
        match serde_json::to_string(frame) {
            Ok(text) => ctx.text(text),
            Err(e) => tracing::warn!(error = %e, "cannot encode a live frame"),
        }
    }

    /// Reads what the broker sent since the last tick and sends it, coalesced.
    fn tick(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        let Some(rx) = self.updates.as_mut() else {
            return;
        };
        loop {
            match rx.try_recv() {
                Ok(update) => match &*update {
                    Update::Frame(Encoded {
                        frame: Frame::Stats { campaign_id, .. },
                        text,
                    }) => {
                        self.stats.insert(*campaign_id, text.clone());
                    }
                    Update::Frame(encoded) => {
                        if self.others.len() < OUTBOX {
                            self.others.push(encoded.clone());
                        } else {
                            // Behind on feed lines too: a fresh snapshot, not a backlog.
                            self.snapshot_pending = true;
                        }
                    }
                    Update::Resync => self.snapshot_pending = true,
                },
                Err(TryRecvError::Empty) => break,
                // Fell behind: a fresh snapshot rather than a backlog.
                Err(TryRecvError::Lagged(_)) => self.snapshot_pending = true,
                Err(TryRecvError::Closed) => {
                    Self::close(ctx, CloseCode::Restart, "the server is going away");
                    return;
                }
            }
        }
        if self.snapshot_in_flight {
            return;
        }
        if self.snapshot_pending {
            self.start_snapshot(ctx);
            return;
        }
        for text in self.stats.drain().map(|(_, t)| t) {
            ctx.text(text);
        }
        for encoded in std::mem::take(&mut self.others) {
            ctx.text(encoded.text);
        }
    }

    /// Sends every campaign of the tenant; what was queued before is superseded.
    fn start_snapshot(&mut self, ctx: &mut ws::WebsocketContext<Self>) {
        self.snapshot_pending = false;
        self.snapshot_in_flight = true;
        self.stats.clear();
        self.others
            .retain(|e| matches!(e.frame, Frame::Redemption { .. }));
        let broker = self.broker.clone();
        let tenant_id = self.tenant_id;
        ctx.spawn(
            async move { broker.snapshot(tenant_id).await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    act.snapshot_in_flight = false;
                    match res {
                        Ok(campaigns) => Self::send(ctx, &Frame::Snapshot { campaigns }),
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot read the live snapshot");
                            Self::close(ctx, CloseCode::Error, "the snapshot could not be read");
                        }
                    }
                }),
        );
    }

    /// Counts a client message; false (and closed) when the client floods.
    fn heard_message(&mut self, ctx: &mut ws::WebsocketContext<Self>) -> bool {
        let now = Instant::now();
        self.heard = now;
        if now.duration_since(self.window) >= Duration::from_secs(1) {
            self.window = now;
            self.in_window = 0;
        }
        self.in_window += 1;
        if self.in_window > FLOOD_LIMIT {
            Self::close(ctx, CloseCode::Policy, "too many messages");
            return false;
        }
        true
    }
}

impl Actor for LiveSession {
    type Context = ws::WebsocketContext<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        self.updates = Some(self.broker.subscribe(self.tenant_id));
        metrics::gauge!(crate::metrics::LIVE_SOCKETS).increment(1.0);
        self.tick(ctx);
        ctx.run_interval(TICK, |act, ctx| act.tick(ctx));
        ctx.run_interval(PING_EVERY, |act, ctx| {
            if act.heard.elapsed() > SILENT_LIMIT {
                Self::close(ctx, CloseCode::Policy, "no answer to ping");
            } else {
                ctx.ping(b"");
            }
        });
        self.watch = Some(self.broker.watch(
            self.session_hash.clone(),
            self.user_id,
            self.tenant_id,
            ctx.address().recipient(),
        ));
    }

    fn stopped(&mut self, _: &mut Self::Context) {
        drop(self.updates.take());
        if let Some(key) = self.watch.take() {
            self.broker.unwatch(key);
        }
        self.broker.release(self.tenant_id);
        metrics::gauge!(crate::metrics::LIVE_SOCKETS).decrement(1.0);
    }
}

/// The console session ended (signed out, expired, user disabled or demoted).
impl Handler<Revoked> for LiveSession {
    type Result = ();

    fn handle(&mut self, _: Revoked, ctx: &mut Self::Context) {
        Self::close(ctx, CloseCode::Policy, "signed out");
    }
}

impl StreamHandler<Result<ws::Message, ws::ProtocolError>> for LiveSession {
    fn handle(&mut self, msg: Result<ws::Message, ws::ProtocolError>, ctx: &mut Self::Context) {
        let msg = match msg {
            Ok(msg) => msg,
            Err(ws::ProtocolError::Overflow) => {
                return Self::close(ctx, CloseCode::Size, "message too big");
            }
            Err(e) => return Self::close(ctx, CloseCode::Protocol, &e.to_string()),
        };
        match msg {
            ws::Message::Ping(bytes) => {
                self.heard = Instant::now();
                ctx.pong(&bytes);
            }
            ws::Message::Pong(_) => self.heard = Instant::now(),
            ws::Message::Text(text) => {
                if !self.heard_message(ctx) {
                    return;
                }
                if text.len() > MAX_CLIENT_MESSAGE {
                    return Self::close(ctx, CloseCode::Size, "message too big");
                }
                match ClientFrame::parse(&text) {
                    Some(ClientFrame::Snapshot) => self.snapshot_pending = true,
                    None => Self::close(ctx, CloseCode::Unsupported, "unknown message type"),
                }
            }
            ws::Message::Binary(_) => Self::close(
                ctx,
                CloseCode::Unsupported,
                "binary frames are not accepted",
            ),
            ws::Message::Continuation(_) => Self::close(
                ctx,
                CloseCode::Unsupported,
                "fragmented messages are not accepted",
            ),
            ws::Message::Close(reason) => {
                ctx.close(reason);
                ctx.stop();
            }
            ws::Message::Nop => {}
        }
    }
}
