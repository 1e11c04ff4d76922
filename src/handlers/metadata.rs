//! Metadata (API 3): brokers, cluster id, controller, topics with ids and partitions; creates
//! missing topics when the request and `auto.create.topics.enable` allow it.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::error_codes;
use crate::broker::Broker;
use crate::metadata::{validate_topic_name, Topic};

/// Kafka's "not requested" marker for authorized-operation fields.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Every operation Kafka supports on a topic (READ, WRITE, CREATE, DELETE, ALTER, DESCRIBE,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS), as the bit set returned without an authorizer.
pub const TOPIC_OPERATIONS: i32 =
    (1 << 3) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 7) | (1 << 8) | (1 << 10) | (1 << 11);
/// Every operation Kafka supports on the cluster (CREATE, ALTER, DESCRIBE, CLUSTER_ACTION,
/// DESCRIBE_CONFIGS, ALTER_CONFIGS, IDEMPOTENT_WRITE).
pub const CLUSTER_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Answers a Metadata request.
pub fn handle(broker: &Broker, req: MetadataRequest, version: i16) -> MetadataResponse {
    let include_topic_ops = version >= 8 && req.include_topic_authorized_operations;
    // v0-v3 have no allow flag and always allowed auto-creation.
    let allow_create =
        (version < 4 || req.allow_auto_topic_creation) && broker.config.auto_create_topics;
    let requested = match req.topics {
        None => None,
        // v0 has no null array: an empty list there means "all topics".
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(list),
    };
    let topics = match requested {
        None => broker
            .metadata
            .topics()
            .iter()
            .map(|t| describe_topic(broker, t, include_topic_ops))
            .collect(),
        Some(list) => list
            .into_iter()
            .map(|rt| match rt.name {
                Some(name) => lookup_by_name(broker, &name, allow_create, include_topic_ops),
                None => match broker.metadata.get_by_id(&rt.topic_id) {
                    Some(t) => describe_topic(broker, &t, include_topic_ops),
                    None => MetadataResponseTopic::default()
                        .with_topic_id(rt.topic_id)
                        .with_error_code(ResponseError::UnknownTopicId.code())
                        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
                },
            })
            .collect(),
    };
    let cluster_ops = if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        CLUSTER_OPERATIONS
    } else {
        AUTHORIZED_OPERATIONS_OMITTED
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.config.node_id))
            .with_host(StrBytes::from_string(broker.advertised_host.clone()))
            .with_port(broker.advertised_port)])
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

fn lookup_by_name(
    broker: &Broker,
    name: &TopicName,
    allow_create: bool,
    include_ops: bool,
) -> MetadataResponseTopic {
    if let Some(t) = broker.metadata.get(name) {
        return describe_topic(broker, &t, include_ops);
    }
    let failed = |code: i16| {
        MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_topic_id(Uuid::nil())
            .with_error_code(code)
            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
    };
    if let Err(e) = validate_topic_name(name) {
        return failed(error_codes::topic_error(&e).code());
    }
    if !allow_create {
        return failed(ResponseError::UnknownTopicOrPartition.code());
    }
    match broker.auto_create_topic(name) {
        Ok(_) => {}
        // Another connection created it first: describe what exists.
        Err(crate::metadata::TopicError::AlreadyExists(_)) => {}
        Err(e) => {
            tracing::warn!(topic = %name.as_str(), error = %e, "auto-creating topic failed");
            return failed(error_codes::topic_error(&e).code());
        }
    }
    match broker.metadata.get(name) {
        Some(t) => describe_topic(broker, &t, include_ops),
        None => failed(ResponseError::UnknownTopicOrPartition.code()),
    }
}

fn describe_topic(broker: &Broker, topic: &Topic, include_ops: bool) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = (0..topic.partition_count())
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(false)
        .with_partitions(partitions)
        .with_topic_authorized_operations(if include_ops {
            TOPIC_OPERATIONS
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        })
}
