//! Traces across the services, in a test binary of its own: it installs the process's global
//! subscriber with an in-memory span exporter, which the other end-to-end tests must not share.

// Most helpers serve the other binaries.
#[path = "helpers.rs"]
#[allow(dead_code)]
mod helpers;

/// The store backend of this test binary.
pub const BACKEND: helpers::Backend = helpers::Backend::Sqlite;

use std::time::Duration;

use opentelemetry::trace::{SpanId, TraceId};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use pronet_proto::feed::v1 as fpb;
use pronet_proto::post::v1::Visibility;

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| kv.value.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_feed_page_is_one_trace_from_the_caller_through_the_feed_to_the_post_service() {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let _telemetry =
        pronet_common::telemetry::install(&pronet_common::config::EnvMap::new(), Some(provider));
    assert!(pronet_common::telemetry::tracing_on());
    let Some(app) = helpers::spawn_app().await else {
        return;
    };
    let ada = app.member("ada_tr").await;
    let bob = app.member("bob_tr").await;
    app.connect(&ada, &bob).await;
    app.post(&bob, "Traced #rust", Visibility::Public).await;
    app.settle().await;
    exporter.reset();

    // The caller's own trace: the feed continues it.
    let trace = TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap();
    let caller_span = SpanId::from_hex("00f067aa0ba902b7").unwrap();
    let mut req = app.req(
        &ada,
        fpb::GetFeedRequest {
            member_id: ada.id.clone(),
            page_size: 10,
            ..Default::default()
        },
    );
    req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace}-{caller_span}-01").parse().unwrap(),
    );
    let page = app.feed.clone().get_feed(req).await.unwrap().into_inner();
    assert_eq!(page.items.len(), 1);

    // Spans end as their calls finish: wait for the feed's.
    let mut spans = Vec::new();
    for _ in 0..200 {
        spans = exporter.get_finished_spans().unwrap();
        if spans
            .iter()
            .any(|s| attribute(s, "server").as_deref() == Some("feed"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let ours: Vec<&SpanData> = spans
        .iter()
        .filter(|s| s.span_context.trace_id() == trace)
        .collect();
    let feed = ours
        .iter()
        .find(|s| {
            s.name == "grpc"
                && attribute(s, "server").as_deref() == Some("feed")
                && attribute(s, "path").is_some_and(|p| p.ends_with("/GetFeed"))
        })
        .unwrap_or_else(|| panic!("no GetFeed span in the caller's trace: {ours:#?}"));
    assert_eq!(feed.parent_span_id, caller_span);
    assert_eq!(
        attribute(feed, "trace_id").as_deref(),
        Some(trace.to_string().as_str()),
        "the span's trace_id field (what every log line of the call shows)"
    );
    // The page's one dependency call, in the post service, under the same trace.
    let post = ours
        .iter()
        .find(|s| {
            s.name == "grpc"
                && attribute(s, "server").as_deref() == Some("post")
                && attribute(s, "path").is_some_and(|p| p.ends_with("/BatchGetPosts"))
        })
        .unwrap_or_else(|| panic!("no BatchGetPosts span in the caller's trace: {ours:#?}"));
    assert_ne!(post.parent_span_id, SpanId::INVALID);
    // And the post service's store read, a child of its call.
    assert!(
        ours.iter().any(|s| s.name == "store"
            && attribute(s, "store").as_deref() == Some("post")
            && s.parent_span_id == post.span_context.span_id()),
        "no store span under BatchGetPosts: {ours:#?}"
    );
}
