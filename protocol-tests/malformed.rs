//! Bad input closes the offending connection only; the broker keeps serving everyone else.

use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, RequestKind, ResponseKind,
};

use crate::harness::{Client, TestBroker};

async fn still_serves(broker: &TestBroker) {
    let mut c = broker.client().await;
    let ResponseKind::ApiVersions(resp) = c
        .request(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await
    else {
        panic!("wrong kind")
    };
    assert_eq!(resp.error_code, 0);
}

async fn assert_closes(broker: &TestBroker, bytes: &[u8], what: &str) {
    let mut c = Client::connect(broker.addr).await;
    c.send_raw(bytes).await;
    assert!(c.is_closed().await, "{what}: connection should be closed");
    still_serves(broker).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_api_key_closes() {
    let broker = TestBroker::start(&[]).await;
    // api key 9999, version 0, correlation 1, client id null
    let frame = [0, 0, 0, 10, 0x27, 0x0f, 0, 0, 0, 0, 0, 1, 0xff, 0xff];
    assert_closes(&broker, &frame, "unknown api key").await;
    // A real Kafka API that Rivulet does not serve (JoinGroup).
    let frame = [0, 0, 0, 10, 0, 11, 0, 5, 0, 0, 0, 1, 0xff, 0xff];
    assert_closes(&broker, &frame, "unserved api").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unsupported_version_closes() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let (_, frame) = c.frame(
        ApiKey::Metadata,
        13,
        &RequestKind::Metadata(MetadataRequest::default()),
    );
    let mut frame = frame.to_vec();
    frame[6..8].copy_from_slice(&14i16.to_be_bytes());
    assert_closes(&broker, &frame, "Metadata v14").await;
    // Produce v0-v2 is advertised (for librdkafka) but not served.
    let frame = [0, 0, 0, 10, 0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff];
    assert_closes(&broker, &frame, "Produce v2").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_frame_closes() {
    let broker = TestBroker::start(&[("socket.request.max.bytes", "1024")]).await;
    let mut frame = vec![0u8; 4 + 2000];
    frame[0..4].copy_from_slice(&2000i32.to_be_bytes());
    assert_closes(&broker, &frame, "oversized").await;
    // A negative size is oversized too.
    assert_closes(&broker, &[0xff, 0xff, 0xff, 0xf0], "negative size").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_and_garbage_frames_close() {
    let broker = TestBroker::start(&[]).await;
    // Size says 100 bytes, 5 arrive, then EOF from our side.
    {
        let mut c = broker.client().await;
        c.send_raw(&[0, 0, 0, 100, 0, 3, 0, 1, 0]).await;
        use tokio::io::AsyncWriteExt;
        c.stream.shutdown().await.expect("shutdown");
        assert!(c.is_closed().await);
    }
    still_serves(&broker).await;
    // A frame shorter than any header.
    assert_closes(&broker, &[0, 0, 0, 3, 0, 3, 0], "short frame").await;
    // A Metadata v12 header followed by garbage instead of a body.
    let mut frame = vec![0, 0, 0, 0, 0, 3, 0, 12, 0, 0, 0, 7, 0xff, 0xff, 0];
    frame.extend_from_slice(&[0xde, 0xad, 0xbe, 0xef, 0x99, 0x42, 0x13]);
    let len = (frame.len() - 4) as i32;
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    assert_closes(&broker, &frame, "garbage body").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_array_count_is_refused() {
    let broker = TestBroker::start(&[]).await;
    // Metadata v0 whose topic array claims 2^31-1 entries with five bytes behind it: decoding
    // must fail cleanly, not abort the broker on a huge allocation.
    let frame = [
        0, 0, 0, 17, 0, 3, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0x7f, 0xff, 0xff, 0xff, 0, 1, b'a', 0, 0,
    ];
    let mut frame = frame.to_vec();
    let len = (frame.len() - 4) as i32;
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    assert_closes(&broker, &frame, "huge array count").await;
    // Compact (flexible) arrays too: Metadata v12 with a varint count of ~2^28.
    let mut frame = vec![0, 0, 0, 0, 0, 3, 0, 12, 0, 0, 0, 2, 0xff, 0xff, 0];
    frame.extend_from_slice(&[0xff, 0xff, 0xff, 0x7f, 0, 0, 0]);
    let len = (frame.len() - 4) as i32;
    frame[0..4].copy_from_slice(&len.to_be_bytes());
    assert_closes(&broker, &frame, "huge compact array count").await;
}
