//! DescribeConfigs (API 32) at every version: effective topic values with their source and
//! synonyms, the broker's settings, key filters, and Kafka's errors per resource.

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, StrBytes};

use crate::every_version::create_topic;
use crate::harness::{Client, TestBroker};

async fn describe(
    c: &mut Client,
    version: i16,
    resource_type: i8,
    name: &str,
    keys: Option<&[&str]>,
    synonyms: bool,
) -> DescribeConfigsResult {
    let resource = DescribeConfigsResource::default()
        .with_resource_type(resource_type)
        .with_resource_name(StrBytes::from_string(name.to_string()))
        .with_configuration_keys(keys.map(|ks| {
            ks.iter()
                .map(|k| StrBytes::from_string(k.to_string()))
                .collect()
        }));
    let req = DescribeConfigsRequest::default()
        .with_resources(vec![resource])
        .with_include_synonyms(synonyms);
    let ResponseKind::DescribeConfigs(resp) = c
        .request(
            ApiKey::DescribeConfigs,
            version,
            RequestKind::DescribeConfigs(req),
        )
        .await
    else {
        panic!("wrong kind")
    };
    assert_eq!(resp.results.len(), 1);
    resp.results[0].clone()
}

/// (value, source, read_only, type, synonyms as (name, value, source)).
type Seen = (String, i8, bool, i8, Vec<(String, String, i8)>);

fn entry(r: &DescribeConfigsResult, name: &str) -> Seen {
    let e = r
        .configs
        .iter()
        .find(|e| e.name.as_str() == name)
        .unwrap_or_else(|| panic!("no {name} entry"));
    let synonyms = e
        .synonyms
        .iter()
        .map(|s| {
            let value = s.value.as_ref().map_or(String::new(), |v| v.to_string());
            (s.name.to_string(), value, s.source)
        })
        .collect();
    let value = e.value.as_ref().map_or(String::new(), |v| v.to_string());
    (value, e.config_source, e.read_only, e.config_type, synonyms)
}

fn s(v: &str) -> String {
    v.to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn describe_configs_at_every_version() {
    let broker = TestBroker::start(&[("log.retention.bytes", "5000000")]).await;
    let mut c = broker.client().await;
    create_topic(&mut c, "cfg", 1, &[("retention.ms", "3600000")]).await;
    let versions = DescribeConfigsRequest::VERSIONS;
    assert_eq!((versions.min, versions.max), (1, 4));
    for v in versions.min..=versions.max {
        let long = if v >= 3 { 5 } else { 0 }; // config_type exists from v3
        let list = if v >= 3 { 7 } else { 0 };
        let r = describe(&mut c, v, 2, "cfg", None, true).await;
        assert_eq!((r.error_code, r.resource_type), (0, 2), "v{v}");
        assert_eq!(r.resource_name.as_str(), "cfg");
        assert!(r.configs.len() >= 30, "v{v}: {} entries", r.configs.len());
        // Set on the topic: DYNAMIC_TOPIC_CONFIG, then the broker key's default.
        assert_eq!(
            entry(&r, "retention.ms"),
            (
                s("3600000"),
                1,
                false,
                long,
                vec![
                    (s("retention.ms"), s("3600000"), 1),
                    (s("log.retention.ms"), s("604800000"), 5)
                ]
            ),
            "v{v}"
        );
        // Set on the broker only: STATIC_BROKER_CONFIG.
        assert_eq!(
            entry(&r, "retention.bytes"),
            (
                s("5000000"),
                4,
                false,
                long,
                vec![
                    (s("log.retention.bytes"), s("5000000"), 4),
                    (s("log.retention.bytes"), s("-1"), 5)
                ]
            ),
            "v{v}"
        );
        // Neither: DEFAULT_CONFIG.
        assert_eq!(
            entry(&r, "cleanup.policy"),
            (
                s("delete"),
                5,
                false,
                list,
                vec![(s("log.cleanup.policy"), s("delete"), 5)]
            ),
            "v{v}"
        );
        // Only the keys asked for; no synonyms unless asked.
        let r = describe(&mut c, v, 2, "cfg", Some(&["retention.ms", "nope"]), false).await;
        assert_eq!(r.configs.len(), 1, "v{v}");
        assert_eq!(entry(&r, "retention.ms").4, vec![]);
        // The broker.
        let r = describe(&mut c, v, 4, "1", None, true).await;
        assert_eq!(r.error_code, 0);
        let (value, source, read_only, _, _) = entry(&r, "num.partitions");
        assert_eq!((value.as_str(), source, read_only), ("1", 5, true), "v{v}");
        assert_eq!(entry(&r, "log.retention.bytes").1, 4);
        assert!(describe(&mut c, v, 4, "", None, false)
            .await
            .configs
            .is_empty());
        // Errors per resource.
        let r = describe(&mut c, v, 2, "missing", None, false).await;
        assert_eq!((r.error_code, r.configs.len()), (3, 0), "v{v}");
        assert_eq!(
            describe(&mut c, v, 2, "bad/name", None, false)
                .await
                .error_code,
            17
        );
        assert_eq!(
            describe(&mut c, v, 4, "99", None, false).await.error_code,
            42
        );
        assert_eq!(
            describe(&mut c, v, 8, "1", None, false).await.error_code,
            42
        );
    }
}
