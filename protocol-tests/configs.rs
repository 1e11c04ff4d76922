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
        // BROKER_LOGGER of another broker.
        assert_eq!(
            describe(&mut c, v, 8, "99", None, false).await.error_code,
            42
        );
    }
}

/// IncrementalAlterConfigs of one topic: (error, message) of its resource.
pub(crate) async fn incremental(
    c: &mut Client,
    version: i16,
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> (i16, Option<String>) {
    use kafka_protocol::messages::incremental_alter_configs_request::{
        AlterConfigsResource, AlterableConfig,
    };
    let req = IncrementalAlterConfigsRequest::default()
        .with_validate_only(validate_only)
        .with_resources(vec![AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        AlterableConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_config_operation(*op)
                            .with_value(v.map(|v| StrBytes::from_string(v.to_string())))
                    })
                    .collect(),
            )]);
    let ResponseKind::IncrementalAlterConfigs(r) = c
        .request(
            ApiKey::IncrementalAlterConfigs,
            version,
            RequestKind::IncrementalAlterConfigs(req),
        )
        .await
    else {
        panic!()
    };
    let res = &r.responses[0];
    (
        res.error_code,
        res.error_message.as_ref().map(|m| m.to_string()),
    )
}

/// Operations of one IncrementalAlterConfigs resource: (key, operation, value).
type Ops<'a> = &'a [(&'a str, i8, Option<&'a str>)];

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;
const TOPIC: i8 = 2;
const BROKER: i8 = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incremental_alter_configs_changes_topics_live_and_durably() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = create_topic(&mut c, "alter", 1, &[]).await;
    for v in 0..=1 {
        // validate_only changes nothing.
        assert_eq!(
            incremental(
                &mut c,
                v,
                TOPIC,
                "alter",
                &[("retention.ms", SET, Some("1000"))],
                true
            )
            .await
            .0,
            0
        );
        let r = describe(&mut c, 4, TOPIC, "alter", Some(&["retention.ms"]), false).await;
        assert_eq!(entry(&r, "retention.ms").1, 5, "v{v}: still the default");
    }
    assert_eq!(
        incremental(
            &mut c,
            1,
            TOPIC,
            "alter",
            &[
                ("retention.ms", SET, Some("3600000")),
                ("max.message.bytes", SET, Some("100")),
                ("cleanup.policy", APPEND, Some("compact"))
            ],
            false
        )
        .await
        .0,
        0
    );
    let r = describe(&mut c, 4, TOPIC, "alter", None, false).await;
    assert_eq!(
        (entry(&r, "retention.ms").0, entry(&r, "retention.ms").1),
        (s("3600000"), 1)
    );
    assert_eq!(entry(&r, "cleanup.policy").0, s("delete,compact"));
    // Live: the new max.message.bytes refuses a larger batch at once.
    let keyed = rivulet::test_support::batch_with_keys(
        5,
        kafka_protocol::records::Compression::None,
        1_000,
        true,
    );
    assert!(keyed.len() > 100, "{} bytes", keyed.len());
    assert_eq!(
        crate::every_version::produce(&mut c, 9, "alter", id, 0, keyed, -1)
            .await
            .0,
        10,
        "MESSAGE_TOO_LARGE"
    );
    // SUBTRACT, DELETE; and the errors.
    assert_eq!(
        incremental(
            &mut c,
            1,
            TOPIC,
            "alter",
            &[
                ("cleanup.policy", SUBTRACT, Some("delete")),
                ("max.message.bytes", DELETE, None)
            ],
            false
        )
        .await
        .0,
        0
    );
    let cases: &[(&str, Ops, i16)] = &[
        ("alter", &[("retention.ms", APPEND, Some("5"))], 40), // not a list
        ("alter", &[("no.such.config", SET, Some("1"))], 40),  // unknown name
        ("alter", &[("retention.ms", SET, Some("soon"))], 40), // bad value
        ("alter", &[("retention.ms", SET, None)], 42),         // null value
        ("alter", &[("retention.ms", 9, Some("1"))], 42),      // unknown operation
        ("missing", &[("retention.ms", SET, Some("1"))], 3),   // unknown topic
        ("missing", &[("no.such.config", SET, Some("1"))], 40), // validated before existence
        ("", &[("retention.ms", SET, Some("1"))], 42),         // default topic resource
    ];
    for (topic, ops, want) in cases {
        assert_eq!(
            incremental(&mut c, 1, TOPIC, topic, ops, false).await.0,
            *want,
            "{topic} {ops:?}"
        );
    }
    // The broker: its own id or ""; another id is INVALID_REQUEST.
    assert_eq!(
        incremental(
            &mut c,
            1,
            BROKER,
            "7",
            &[("log.retention.ms", SET, Some("1"))],
            false
        )
        .await
        .0,
        42
    );
    assert_eq!(incremental(&mut c, 1, BROKER, "1", &[], false).await.0, 0);
    // Dynamic broker configs: the cluster default, then this broker's own value, over the
    // static setting, for every topic without an override.
    create_topic(&mut c, "follows", 1, &[]).await;
    assert_eq!(
        incremental(
            &mut c,
            1,
            BROKER,
            "",
            &[("log.retention.ms", SET, Some("1000"))],
            false
        )
        .await
        .0,
        0
    );
    let r = describe(&mut c, 4, TOPIC, "follows", Some(&["retention.ms"]), true).await;
    let (value, source, _, _, synonyms) = entry(&r, "retention.ms");
    assert_eq!(
        (value, source),
        (s("1000"), 3),
        "DYNAMIC_DEFAULT_BROKER_CONFIG"
    );
    assert_eq!(synonyms[0], (s("log.retention.ms"), s("1000"), 3));
    assert_eq!(
        incremental(
            &mut c,
            1,
            BROKER,
            "1",
            &[("log.retention.ms", SET, Some("2000"))],
            false
        )
        .await
        .0,
        0
    );
    let r = describe(&mut c, 4, TOPIC, "follows", Some(&["retention.ms"]), true).await;
    let (value, source, _, _, synonyms) = entry(&r, "retention.ms");
    assert_eq!((value, source), (s("2000"), 2), "DYNAMIC_BROKER_CONFIG");
    assert_eq!(
        synonyms.iter().map(|x| x.2).collect::<Vec<_>>(),
        vec![2, 3, 5]
    );
    let r = describe(
        &mut c,
        4,
        BROKER,
        "1",
        Some(&["log.retention.ms", "num.partitions"]),
        false,
    )
    .await;
    assert_eq!(
        (
            entry(&r, "log.retention.ms").0,
            entry(&r, "log.retention.ms").2
        ),
        (s("2000"), false)
    );
    assert!(entry(&r, "num.partitions").2, "num.partitions is read-only");
    let r = describe(&mut c, 4, BROKER, "", None, false).await;
    assert_eq!(entry(&r, "log.retention.ms").1, 3);
    // Kafka answers INVALID_REQUEST for broker config errors: a read-only key, a bad value;
    // APPEND to a setting that is not a list is INVALID_CONFIG.
    for (key, op, value, code) in [
        ("num.partitions", SET, "3", 42),
        ("log.retention.ms", SET, "x", 42),
        ("log.retention.ms", APPEND, "1", 40),
    ] {
        let ops = [(key, op, Some(value))];
        let got = incremental(&mut c, 1, BROKER, "1", &ops, false).await;
        assert_eq!(got.0, code, "{key} {op} {value}");
    }
    // Persisted: the same values after a restart.
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    let r = describe(&mut c, 4, TOPIC, "follows", Some(&["retention.ms"]), false).await;
    assert_eq!(
        (entry(&r, "retention.ms").0, entry(&r, "retention.ms").1),
        (s("2000"), 2)
    );
    assert_eq!(
        incremental(
            &mut c,
            1,
            BROKER,
            "1",
            &[("log.retention.ms", DELETE, None)],
            false
        )
        .await
        .0,
        0
    );
    let r = describe(&mut c, 4, TOPIC, "follows", Some(&["retention.ms"]), false).await;
    assert_eq!(
        (entry(&r, "retention.ms").0, entry(&r, "retention.ms").1),
        (s("1000"), 3)
    );
    let r = describe(&mut c, 4, TOPIC, "alter", None, false).await;
    assert_eq!(
        (entry(&r, "retention.ms").0, entry(&r, "retention.ms").1),
        (s("3600000"), 1)
    );
    assert_eq!(entry(&r, "cleanup.policy").0, s("compact"));
    assert_eq!(
        entry(&r, "max.message.bytes").1,
        5,
        "deleted: back to the default"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_replaces_every_override() {
    use kafka_protocol::messages::alter_configs_request::{AlterConfigsResource, AlterableConfig};
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    create_topic(
        &mut c,
        "legacy",
        1,
        &[("retention.ms", "1000"), ("segment.bytes", "1048576")],
    )
    .await;
    for v in 0..=2 {
        let req = AlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_static_str("legacy"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_string(format!("{}", 2000 + v))))]),
            // The same resource twice: INVALID_REQUEST for both.
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_static_str("twice")),
            AlterConfigsResource::default()
                .with_resource_type(TOPIC)
                .with_resource_name(StrBytes::from_static_str("twice")),
        ]);
        let ResponseKind::AlterConfigs(r) = c
            .request(ApiKey::AlterConfigs, v, RequestKind::AlterConfigs(req))
            .await
        else {
            panic!()
        };
        let codes: Vec<i16> = r.responses.iter().map(|x| x.error_code).collect();
        assert_eq!(codes, vec![0, 42, 42], "v{v}");
        let d = describe(&mut c, 4, TOPIC, "legacy", None, false).await;
        assert_eq!(entry(&d, "retention.ms").0, format!("{}", 2000 + v));
        assert_eq!(
            entry(&d, "segment.bytes").1,
            5,
            "v{v}: overrides not sent are removed"
        );
    }
}

const GROUP: i8 = 32;

/// One setting of one resource, described alone (DescribeConfigs v4).
async fn one(c: &mut Client, resource_type: i8, name: &str, key: &str) -> Seen {
    let d = describe(c, 4, resource_type, name, Some(&[key]), false).await;
    entry(&d, key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_configs_are_validated_stored_and_described_for_any_group() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    // Any non-empty name, existing or not: the broker's values, source DEFAULT_CONFIG.
    let d = describe(&mut c, 4, GROUP, "no-such-group", None, true).await;
    assert_eq!(d.error_code, 0);
    let names: Vec<String> = d.configs.iter().map(|e| e.name.to_string()).collect();
    assert!(names.contains(&s("consumer.session.timeout.ms")));
    assert!(names.contains(&s("share.record.lock.duration.ms")));
    let session = entry(&d, "consumer.session.timeout.ms");
    assert_eq!(
        (session.0.as_str(), session.1, session.2, session.3),
        ("45000", 5, false, 3)
    );
    assert_eq!(entry(&d, "share.auto.offset.reset").0, "latest");
    for v in 0..=1 {
        let set = |value: &'static str| [("consumer.session.timeout.ms", SET, Some(value))];
        // validate_only changes nothing.
        assert_eq!(
            incremental(&mut c, v, GROUP, "g1", &set("50000"), true)
                .await
                .0,
            0
        );
        assert_eq!(
            one(&mut c, GROUP, "g1", "consumer.session.timeout.ms")
                .await
                .1,
            5
        );
        assert_eq!(
            incremental(&mut c, v, GROUP, "g1", &set("50000"), false)
                .await
                .0,
            0
        );
        let d = describe(
            &mut c,
            4,
            GROUP,
            "g1",
            Some(&["consumer.session.timeout.ms"]),
            true,
        )
        .await;
        let e = entry(&d, "consumer.session.timeout.ms");
        assert_eq!((e.0.as_str(), e.1), ("50000", 8), "v{v}: GROUP_CONFIG");
        assert_eq!(d.configs.len(), 1, "configuration_keys filters");
        // Outside the broker's bounds, unknown, not a number, APPEND to a non-list: INVALID_CONFIG.
        for bad in [
            incremental(&mut c, v, GROUP, "g1", &set("44999"), false).await,
            incremental(&mut c, v, GROUP, "g1", &set("60001"), false).await,
            incremental(&mut c, v, GROUP, "g1", &set("soon"), false).await,
            incremental(
                &mut c,
                v,
                GROUP,
                "g1",
                &[("consumer.bogus", SET, Some("1"))],
                false,
            )
            .await,
            incremental(
                &mut c,
                v,
                GROUP,
                "g1",
                &[("consumer.heartbeat.interval.ms", APPEND, Some("6000"))],
                false,
            )
            .await,
        ] {
            assert_eq!(bad.0, 40, "v{v}: {bad:?}");
        }
        assert_eq!(
            incremental(&mut c, v, GROUP, "", &set("50000"), false)
                .await
                .0,
            42
        );
        assert_eq!(
            incremental(
                &mut c,
                v,
                GROUP,
                "g1",
                &[("consumer.session.timeout.ms", DELETE, None)],
                false
            )
            .await
            .0,
            0
        );
        let d = describe(&mut c, 4, GROUP, "g1", None, false).await;
        assert_eq!(entry(&d, "consumer.session.timeout.ms").1, 5, "deleted");
    }
    // Stored durably.
    let ops = [("share.record.lock.duration.ms", SET, Some("20000"))];
    assert_eq!(incremental(&mut c, 1, GROUP, "g2", &ops, false).await.0, 0);
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    let d = describe(&mut c, 4, GROUP, "g2", None, false).await;
    let e = entry(&d, "share.record.lock.duration.ms");
    assert_eq!((e.0.as_str(), e.1), ("20000", 8));
    assert_eq!(
        describe(&mut c, 4, GROUP, "", None, false).await.error_code,
        42
    );
}

const CLIENT_METRICS: i8 = 16;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_metrics_subscriptions_are_validated_stored_and_deleted() {
    let mut broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let d = describe(&mut c, 4, CLIENT_METRICS, "never-set", None, false).await;
    assert_eq!(d.error_code, 0);
    let interval = entry(&d, "interval.ms");
    assert_eq!(
        (interval.0.as_str(), interval.1, interval.3),
        ("300000", 5, 3)
    );
    assert_eq!(entry(&d, "metrics").3, 7, "a LIST");
    let ops = [
        ("metrics", SET, Some("org.apache.kafka.producer.")),
        ("interval.ms", SET, Some("1000")),
        ("match", SET, Some("client_id=app-.*")),
    ];
    assert_eq!(
        incremental(&mut c, 1, CLIENT_METRICS, "sub", &ops, false)
            .await
            .0,
        0
    );
    let d = describe(&mut c, 4, CLIENT_METRICS, "sub", None, false).await;
    assert_eq!(entry(&d, "interval.ms").0, "1000");
    assert_eq!(entry(&d, "metrics").1, 7, "CLIENT_METRICS_CONFIG");
    for (key, op, value, code) in [
        ("interval.ms", SET, "50", 42),
        ("colour", SET, "red", 42),
        ("interval.ms", SET, "x", 40),
        ("match", SET, "host=a", 40),
        ("metrics", APPEND, "x", 40),
    ] {
        let ops = [(key, op, Some(value))];
        let got = incremental(&mut c, 1, CLIENT_METRICS, "sub", &ops, false).await;
        assert_eq!(got.0, code, "{key} {op} {value}");
    }
    let ops = [("interval.ms", SET, Some("1000"))];
    assert_eq!(
        incremental(&mut c, 1, CLIENT_METRICS, "", &ops, false)
            .await
            .0,
        42
    );
    broker.restart(&[]).await;
    let mut c = broker.client().await;
    let d = describe(&mut c, 4, CLIENT_METRICS, "sub", None, false).await;
    assert_eq!(entry(&d, "match").0, "client_id=app-.*", "stored durably");
    // Deleting every setting deletes the subscription.
    let delete = [
        ("metrics", DELETE, None),
        ("interval.ms", DELETE, None),
        ("match", DELETE, None),
    ];
    assert_eq!(
        incremental(&mut c, 1, CLIENT_METRICS, "sub", &delete, false)
            .await
            .0,
        0
    );
    let d = describe(&mut c, 4, CLIENT_METRICS, "sub", None, false).await;
    assert!(d.configs.iter().all(|e| e.config_source == 5));
    assert!(broker
        .broker()
        .resource_configs
        .names(rivulet::resource_configs::Kind::ClientMetrics)
        .is_empty());
}

const BROKER_LOGGER: i8 = 8;

/// (resource name, logger, op, level, validate_only, expected code).
type LoggerStep<'a> = (&'a str, &'a str, i8, Option<&'a str>, bool, i16);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broker_logger_levels_change_live() {
    use kafka_protocol::messages::alter_configs_request::AlterConfigsResource;
    let broker = TestBroker::start(&[]).await;
    let mut c = broker.client().await;
    let id = broker.broker().config.node_id.to_string();
    let d = describe(&mut c, 4, BROKER_LOGGER, &id, None, true).await;
    assert_eq!(d.error_code, 0);
    let root = entry(&d, "root");
    assert_eq!((root.1, root.2, root.3, root.4.len()), (6, false, 0, 0));
    let logger = "rivulet::cleaner";
    let steps: [LoggerStep; 9] = [
        (&id, logger, SET, Some("DEBUG"), true, 0),
        (&id, logger, SET, Some("DEBUG"), false, 0),
        // Kafka's refusals: a level it does not know (case-sensitive), an unknown logger, root's
        // removal, list operations, another broker.
        (&id, logger, SET, Some("debug"), false, 40),
        (&id, "kafka.server", SET, Some("INFO"), false, 40),
        (&id, "root", DELETE, None, false, 42),
        (&id, logger, APPEND, Some("INFO"), false, 42),
        ("77", logger, SET, Some("INFO"), false, 42),
        ("x", logger, SET, Some("INFO"), false, 42),
        (&id, "rivulet", SET, Some("WARN"), true, 0),
    ];
    for (i, (name, target, op, level, validate_only, code)) in steps.into_iter().enumerate() {
        let ops = [(target, op, level)];
        let got = incremental(&mut c, 1, BROKER_LOGGER, name, &ops, validate_only).await;
        assert_eq!(got.0, code, "step {i}: {got:?}");
        let want = if i == 0 { root.0.as_str() } else { "DEBUG" };
        assert_eq!(
            one(&mut c, BROKER_LOGGER, &id, logger).await.0,
            want,
            "step {i}"
        );
    }
    assert_eq!(
        describe(&mut c, 4, BROKER_LOGGER, "", None, false)
            .await
            .error_code,
        42
    );
    let req = AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
        .with_resource_type(BROKER_LOGGER)
        .with_resource_name(StrBytes::from_string(id.clone()))]);
    let ResponseKind::AlterConfigs(r) = c
        .request(ApiKey::AlterConfigs, 2, RequestKind::AlterConfigs(req))
        .await
    else {
        panic!()
    };
    assert_eq!(
        r.responses[0].error_code, 42,
        "AlterConfigs has no BROKER_LOGGER"
    );
    // A refused change in a batch changes nothing; DELETE returns to the inherited level.
    let ops = [
        (logger, SET, Some("TRACE")),
        ("rivulet::log", SET, Some("LOUD")),
    ];
    assert_eq!(
        incremental(&mut c, 1, BROKER_LOGGER, &id, &ops, false)
            .await
            .0,
        40
    );
    assert_eq!(one(&mut c, BROKER_LOGGER, &id, logger).await.0, "DEBUG");
    let ops = [(logger, DELETE, None)];
    assert_eq!(
        incremental(&mut c, 1, BROKER_LOGGER, &id, &ops, false)
            .await
            .0,
        0
    );
    assert_eq!(one(&mut c, BROKER_LOGGER, &id, logger).await.0, root.0);
}
