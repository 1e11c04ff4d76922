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

/// (epoch, finalized transaction.version level or 0) from ApiVersions v4.
async fn finalized(c: &mut crate::harness::Client) -> (i64, i16) {
    let ResponseKind::ApiVersions(resp) = c
        .request(
            ApiKey::ApiVersions,
            4,
            RequestKind::ApiVersions(ApiVersionsRequest::default()),
        )
        .await
    else {
        panic!("wrong response kind")
    };
    let tv = resp
        .finalized_features
        .iter()
        .find(|f| f.name.as_str() == "transaction.version")
        .map_or(0, |f| {
            assert_eq!(f.min_version_level, f.max_version_level);
            f.max_version_level
        });
    (resp.finalized_features_epoch, tv)
}

async fn send(
    c: &mut crate::harness::Client,
    version: i16,
    updates: Vec<kafka_protocol::messages::update_features_request::FeatureUpdateKey>,
    validate_only: bool,
) -> kafka_protocol::messages::UpdateFeaturesResponse {
    let mut req =
        kafka_protocol::messages::UpdateFeaturesRequest::default().with_feature_updates(updates);
    if version >= 1 {
        req = req.with_validate_only(validate_only);
    }
    let ResponseKind::UpdateFeatures(r) = c
        .request(
            ApiKey::UpdateFeatures,
            version,
            RequestKind::UpdateFeatures(req),
        )
        .await
    else {
        panic!()
    };
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn update_features_changes_finalized_levels_all_or_nothing_and_durably() {
    use kafka_protocol::messages::update_features_request::FeatureUpdateKey;
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let (epoch0, level) = finalized(&mut c).await;
    assert_eq!(level, 2);
    let update = |name: &'static str, level: i16, kind: i8| {
        FeatureUpdateKey::default()
            .with_feature(StrBytes::from_static_str(name))
            .with_max_version_level(level)
            .with_upgrade_type(kind)
    };
    // v0 is always an upgrade: a downgrade is refused, top-level, with no results.
    let r = send(&mut c, 0, vec![update("transaction.version", 1, 1)], false).await;
    assert_eq!((r.error_code, r.results.len()), (95, 0));
    assert!(r
        .error_message
        .unwrap()
        .contains("without setting the upgrade type"));
    // Unknown feature, level out of range, bad upgrade type, up with a downgrade type.
    for (u, what) in [
        (
            update("metadata.version", 25, 1),
            "does not support this feature",
        ),
        (
            update("transaction.version", 3, 1),
            "only supports versions 0-2",
        ),
        (
            update("transaction.version", 1, 4),
            "does not support the given upgrade type",
        ),
        (update("group.version", 0, 2), "not found"),
    ] {
        let r = send(&mut c, 1, vec![u], false).await;
        assert_eq!(r.error_code, 95, "{what}");
        assert!(
            r.error_message.as_deref().unwrap().contains(what),
            "{what}: {:?}",
            r.error_message
        );
    }
    // All or nothing: one bad update leaves the good one undone.
    let r = send(
        &mut c,
        1,
        vec![
            update("transaction.version", 1, 2),
            update("metadata.version", 25, 1),
        ],
        false,
    )
    .await;
    assert_eq!(r.error_code, 95);
    assert_eq!(finalized(&mut c).await, (epoch0, 2));
    // validate_only checks and changes nothing.
    let r = send(&mut c, 1, vec![update("transaction.version", 1, 2)], true).await;
    assert_eq!((r.error_code, r.results.len()), (0, 1));
    assert_eq!(finalized(&mut c).await, (epoch0, 2));
    // A safe downgrade to 1: v1 lists the result as Kafka does ("NONE"); the epoch moves.
    let r = send(&mut c, 1, vec![update("transaction.version", 1, 2)], false).await;
    assert_eq!(r.error_code, 0);
    assert_eq!(r.results[0].error_message.as_deref(), Some("NONE"));
    assert_eq!(finalized(&mut c).await, (epoch0 + 1, 1));
    let r = send(&mut c, 1, vec![update("transaction.version", 2, 2)], false).await;
    assert_eq!(r.error_code, 95);
    assert!(r
        .error_message
        .as_deref()
        .unwrap()
        .contains("newer version"));
    // v2: no results; level 0 removes the feature from the finalized list.
    let r = send(&mut c, 2, vec![update("transaction.version", 0, 3)], false).await;
    assert_eq!((r.error_code, r.results.len()), (0, 0));
    assert_eq!(finalized(&mut c).await, (epoch0 + 2, 0));
    let r = send(&mut c, 2, vec![update("transaction.version", 2, 1)], false).await;
    assert_eq!(r.error_code, 0);
    broker.restart(&[("transaction.version", "1")]).await;
    let mut c = broker.client().await;
    assert_eq!(
        finalized(&mut c).await,
        (epoch0 + 3, 2),
        "the stored level wins over the setting"
    );
}
