//! ApiVersions: the advertised table, the KIP-511 fallback, header v0 at every version.

use kafka_protocol::messages::{ApiKey, ApiVersionsRequest, RequestKind, ResponseKind};
use kafka_protocol::protocol::StrBytes;
use rivulet::handlers::registry::APIS as SUPPORTED;

use crate::harness::TestBroker;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_version_lists_the_supported_table() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    for version in 0..=4 {
        let req = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str("protocol-tests"))
            .with_client_software_version(StrBytes::from_static_str("1.0"));
        let ResponseKind::ApiVersions(resp) = c
            .request(ApiKey::ApiVersions, version, RequestKind::ApiVersions(req))
            .await
        else {
            panic!("wrong response kind")
        };
        assert_eq!(resp.error_code, 0, "v{version}");
        assert_eq!(resp.api_keys.len(), SUPPORTED.len(), "v{version}");
        let produce = resp
            .api_keys
            .iter()
            .find(|k| k.api_key == 0)
            .expect("produce listed");
        assert_eq!((produce.min_version, produce.max_version), (0, 13));
        let metadata = resp
            .api_keys
            .iter()
            .find(|k| k.api_key == 3)
            .expect("metadata listed");
        assert_eq!((metadata.min_version, metadata.max_version), (0, 13));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_version_answers_v0_with_unsupported_version() {
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    // A future ApiVersions v9 with a flexible (v2) header, as a newer client would send it.
    let (correlation_id, frame) = c.frame(
        ApiKey::ApiVersions,
        4,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    );
    let mut frame = frame.to_vec();
    frame[6..8].copy_from_slice(&9i16.to_be_bytes());
    c.send_raw(&frame).await;
    let mut resp = c.read_frame().await.expect("answered, not closed");
    let ResponseKind::ApiVersions(resp) =
        crate::harness::decode_response(ApiKey::ApiVersions, 0, correlation_id, &mut resp)
    else {
        panic!("wrong kind")
    };
    assert_eq!(resp.error_code, 35, "UNSUPPORTED_VERSION");
    assert_eq!(resp.api_keys.len(), SUPPORTED.len());
    // The connection stays usable: the client retries at a version we listed.
    let ResponseKind::ApiVersions(ok) = c
        .request(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await
    else {
        panic!("wrong kind")
    };
    assert_eq!(ok.error_code, 0);
}
