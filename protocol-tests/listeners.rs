//! Several named listeners: each request's context carries the listener it came in on, and the
//! answers that name this broker (Metadata, FindCoordinator, DescribeCluster) name it at that
//! listener's advertised address, as Kafka does.

use kafka_protocol::messages::*;

use crate::groups::s;
use crate::harness::{Client, TestBroker};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_name_the_listener_the_request_came_in_on() {
    let broker = TestBroker::start(&[
        (
            "listeners",
            "PLAINTEXT://127.0.0.1:0,INTERNAL://127.0.0.1:0",
        ),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT",
        ),
        (
            "advertised.listeners",
            "PLAINTEXT://127.0.0.1:0,INTERNAL://internal.example:1234",
        ),
    ])
    .await;
    let listeners = broker.handle.as_ref().unwrap().listeners().to_vec();
    assert_eq!(listeners.len(), 2);
    assert_eq!(listeners[1].name, "INTERNAL");
    let expected = [
        ("127.0.0.1".to_string(), listeners[0].bound.port() as i32),
        ("internal.example".to_string(), 1234),
    ];
    for (listener, (host, port)) in listeners.iter().zip(expected) {
        let mut c = Client::connect(listener.bound).await;
        let ResponseKind::Metadata(m) = c
            .request(
                ApiKey::Metadata,
                12,
                RequestKind::Metadata(MetadataRequest::default()),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(
            (m.brokers[0].host.to_string(), m.brokers[0].port),
            (host.clone(), port)
        );
        let ResponseKind::FindCoordinator(f) = c
            .request(
                ApiKey::FindCoordinator,
                4,
                RequestKind::FindCoordinator(
                    FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")]),
                ),
            )
            .await
        else {
            panic!()
        };
        let coordinator = &f.coordinators[0];
        assert_eq!(
            (coordinator.host.to_string(), coordinator.port),
            (host.clone(), port)
        );
        let ResponseKind::DescribeCluster(d) = c
            .request(
                ApiKey::DescribeCluster,
                1,
                RequestKind::DescribeCluster(
                    DescribeClusterRequest::default().with_endpoint_type(1),
                ),
            )
            .await
        else {
            panic!()
        };
        assert_eq!(
            (d.brokers[0].host.to_string(), d.brokers[0].port),
            (host, port)
        );
    }
}
