//! The production transport of domain events: NATS JetStream.
//!
//! - Each service runs a relay ([`spawn_relay`]) that publishes its outbox, in sequence order,
//!   to one stream per service (`<PREFIX>_<SERVICE>`, subjects `<prefix>.<service>.<event>`),
//!   with `Nats-Msg-Id` = the event id so a re-published event is dropped by the stream's
//!   duplicate window. The relay's position is kept in the outbox's reader table (so nothing is
//!   pruned before it is published) and moves only after JetStream acknowledged the batch.
//! - Readers consume with durable pull consumers ([`consumer`]) and apply idempotently by the
//!   event's own sequence (delivery is at least once).

use std::time::Duration;

use async_nats::jetstream::{self, consumer::pull, stream};
use async_nats::HeaderMap;
use pronet_proto::events::v1 as pb;
use prost::Message;

use crate::outbox::{Outbox, Payload};

/// Where JetStream is and how pronet names its streams there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// `nats://host:port`.
    pub url: String,
    /// Subject and stream prefix (`pronet` unless several suites share a server, as tests do).
    pub prefix: String,
}

impl NatsConfig {
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            prefix: "pronet".into(),
        }
    }

    /// The stream of `source`'s events.
    pub fn stream_name(&self, source: &str) -> String {
        format!("{}_{}", self.prefix, source).to_ascii_uppercase()
    }

    /// The subject of one event.
    pub fn subject(&self, source: &str, event_type: &str) -> String {
        format!("{}.{source}.{event_type}", self.prefix)
    }
}

/// The subject token of an event's type.
pub fn event_type(payload: Option<&Payload>) -> &'static str {
    match payload {
        Some(Payload::ProfileCreated(_)) => "profile_created",
        Some(Payload::ProfileRenamed(_)) => "profile_renamed",
        Some(Payload::ConnectionMade(_)) => "connection_made",
        Some(Payload::ConnectionRemoved(_)) => "connection_removed",
        Some(Payload::MemberFollowed(_)) => "member_followed",
        Some(Payload::MemberUnfollowed(_)) => "member_unfollowed",
        Some(Payload::HashtagFollowed(_)) => "hashtag_followed",
        Some(Payload::HashtagUnfollowed(_)) => "hashtag_unfollowed",
        Some(Payload::MemberBlocked(_)) => "member_blocked",
        Some(Payload::MemberUnblocked(_)) => "member_unblocked",
        Some(Payload::PostCreated(_)) => "post_created",
        Some(Payload::PostEdited(_)) => "post_edited",
        Some(Payload::PostDeleted(_)) => "post_deleted",
        Some(Payload::ReactionSet(_)) => "reaction_set",
        Some(Payload::ReactionRemoved(_)) => "reaction_removed",
        Some(Payload::CommentCreated(_)) => "comment_created",
        Some(Payload::CommentDeleted(_)) => "comment_deleted",
        Some(Payload::ShareRecorded(_)) => "share_recorded",
        Some(Payload::ImpressionsRecorded(_)) => "impressions_recorded",
        Some(Payload::PostHidden(_)) => "post_hidden",
        Some(Payload::PostUnhidden(_)) => "post_unhidden",
        Some(Payload::HashtagMuted(_)) => "hashtag_muted",
        Some(Payload::HashtagUnmuted(_)) => "hashtag_unmuted",
        Some(Payload::AuthorMuted(_)) => "author_muted",
        Some(Payload::AuthorUnmuted(_)) => "author_unmuted",
        None => "unknown",
    }
}

/// Events kept in a stream: readers further behind rebuild from an export.
const STREAM_MAX_AGE: Duration = Duration::from_secs(24 * 3600);
/// The window in which a re-published event id is dropped.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
/// Events per relay read and publish burst.
const RELAY_BATCH: usize = 500;
/// How long an idle relay waits before looking again (commits of this process wake it sooner).
const RELAY_POLL: Duration = Duration::from_millis(20);
/// The relay's name in the outbox's reader table.
pub const RELAY_CONSUMER: &str = "nats-relay";

/// Connects to JetStream.
pub async fn connect(url: &str) -> Result<jetstream::Context, String> {
    let client = async_nats::ConnectOptions::new()
        .connection_timeout(Duration::from_secs(5))
        .retry_on_initial_connect()
        .connect(url)
        .await
        .map_err(|e| format!("connecting to NATS at {url}: {e}"))?;
    Ok(jetstream::new(client))
}

/// Makes sure `source`'s stream exists.
pub async fn ensure_stream(
    js: &jetstream::Context,
    config: &NatsConfig,
    source: &str,
) -> Result<stream::Stream, String> {
    js.get_or_create_stream(stream::Config {
        name: config.stream_name(source),
        subjects: vec![format!("{}.{source}.>", config.prefix)],
        max_age: STREAM_MAX_AGE,
        duplicate_window: DUPLICATE_WINDOW,
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await
    .map_err(|e| format!("creating stream {}: {e}", config.stream_name(source)))
}

/// Publishes `source`'s outbox to JetStream until the process ends, resuming where it left
/// off and retrying (with back-off) while NATS is away.
pub fn spawn_relay(config: NatsConfig, source: &'static str, outbox: Outbox) {
    tokio::spawn(async move {
        let mut delay = Duration::from_millis(100);
        loop {
            match relay(&config, source, &outbox).await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(source, error = %e, retry_in = ?delay, "event relay to NATS failed");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    });
}

async fn relay(config: &NatsConfig, source: &'static str, outbox: &Outbox) -> Result<(), String> {
    let js = connect(&config.url).await?;
    ensure_stream(&js, config, source).await?;
    let mut position = outbox
        .reader_position(RELAY_CONSUMER)
        .await
        .map_err(|e| e.to_string())?
        .unwrap_or(0);
    tracing::info!(source, position, stream = %config.stream_name(source), "relaying events to NATS");
    let mut commits = outbox.commit_watch();
    loop {
        if let Some(rx) = commits.as_mut() {
            rx.borrow_and_update();
        }
        let events = outbox
            .read_after(position, RELAY_BATCH)
            .await
            .map_err(|e| e.to_string())?;
        if events.is_empty() {
            match commits.as_mut() {
                Some(rx) => {
                    let _ = tokio::time::timeout(Duration::from_millis(250), rx.changed()).await;
                }
                None => tokio::time::sleep(RELAY_POLL).await,
            }
            continue;
        }
        // Published back to back, then every acknowledgement awaited: one round trip a batch.
        let mut acks = Vec::with_capacity(events.len());
        for event in &events {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", event.id.as_str());
            let subject = config.subject(source, event_type(event.payload.as_ref()));
            let ack = js
                .publish_with_headers(subject, headers, event.encode_to_vec().into())
                .await
                .map_err(|e| format!("publishing event {}: {e}", event.sequence))?;
            acks.push(ack);
        }
        for ack in acks {
            ack.await
                .map_err(|e| format!("JetStream did not acknowledge: {e}"))?;
        }
        position = events.last().map_or(position, |e| e.sequence);
        outbox
            .record_position(RELAY_CONSUMER, position, crate::time::now_micros())
            .await
            .map_err(|e| e.to_string())?;
    }
}

/// A durable pull consumer of `source`'s stream named `durable`, delivering what was published
/// at or after `start` (microseconds since the epoch). It is dropped by the server after an
/// hour without a reader.
pub async fn consumer(
    js: &jetstream::Context,
    config: &NatsConfig,
    source: &str,
    durable: &str,
    start: i64,
) -> Result<jetstream::consumer::Consumer<pull::Config>, String> {
    let stream = ensure_stream(js, config, source).await?;
    let start_time = time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(start) * 1000)
        .map_err(|e| format!("consumer start time: {e}"))?;
    // A consumer's start cannot change: a new start gets a new consumer.
    let _ = stream.delete_consumer(durable).await;
    stream
        .create_consumer(pull::Config {
            durable_name: Some(durable.to_owned()),
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartTime { start_time },
            ack_policy: jetstream::consumer::AckPolicy::All,
            inactive_threshold: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("creating consumer {durable}: {e}"))
}

/// Decodes a message's event.
pub fn decode(payload: &[u8]) -> Result<pb::Event, String> {
    pb::Event::decode(payload).map_err(|e| format!("undecodable event: {e}"))
}
