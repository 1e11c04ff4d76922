//! Metadata (API 3): brokers, cluster id, controller, topics with ids and partitions; creates
//! missing topics when the request and `auto.create.topics.enable` allow it.
//!
//! Topics by id (v12+): a request with any topic id is answered for its ids alone, an unknown
//! id with UNKNOWN_TOPIC_ID and no name; v10-v11 requests with ids or null names are
//! INVALID_REQUEST, as Kafka never served ids there.
//!
//! ACLs as Kafka's `KafkaApis.handleTopicMetadataRequest`: an all-topics request silently leaves
//! out topics the principal may not DESCRIBE; a topic asked for by name answers
//! TOPIC_AUTHORIZATION_FAILED; auto-creation needs CREATE on the cluster or the topic. The answer
//! names this broker at the listener the request came in on. Creating topics writes files, so a
//! request that creates answers from the blocking pool.

use std::sync::Arc;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, MetadataRequest, MetadataResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::context::{
    AclOperation, Listener, RequestContext, Resource, ResourceType, AUTHORIZED_OPERATIONS_OMITTED,
    CLUSTER_OPERATIONS, TOPIC_OPERATIONS,
};
use super::{error_codes, Reply};
use crate::broker::Broker;
use crate::topics::{validate_topic_name, Topic, TopicError};

/// What to answer for one topic, decided (authorization included) before any file is touched.
enum Planned {
    /// Describe this existing topic, with these authorized operations (or the omitted marker).
    Describe(Arc<Topic>, i32),
    /// Create it if still missing, then describe it.
    Create(TopicName, i32),
    /// Answer this error for a topic named by name.
    NameError(TopicName, ResponseError),
    /// Answer UNKNOWN_TOPIC_ID for a topic named by id.
    UnknownId(Uuid),
    /// Answer TOPIC_AUTHORIZATION_FAILED for a topic named by id (its id is not secret; its
    /// name is).
    IdDenied(Uuid),
    /// Answer INVALID_REQUEST (ids before v12).
    Invalid(TopicName, Uuid),
}

/// Answers a Metadata request.
pub fn handle(ctx: &RequestContext<'_>, req: MetadataRequest) -> Reply {
    let version = ctx.version;
    let broker = ctx.broker;
    let include_topic_ops = version >= 8 && req.include_topic_authorized_operations;
    let topic_ops = |name: &str| {
        if include_topic_ops {
            ctx.authorized_operations(Resource::Topic(name), TOPIC_OPERATIONS)
        } else {
            AUTHORIZED_OPERATIONS_OMITTED
        }
    };
    // v0-v3 have no allow flag and always allowed auto-creation.
    let allow_create =
        (version < 4 || req.allow_auto_topic_creation) && broker.config.auto_create_topics;
    let requested = match req.topics {
        None => None,
        // v0 has no null array: an empty list there means "all topics".
        Some(list) if list.is_empty() && version == 0 => None,
        Some(list) => Some(list),
    };
    let plan: Vec<Planned> = match requested {
        None => broker
            .topics
            .topics()
            .into_iter()
            .filter(|t| ctx.authorize(AclOperation::Describe, Resource::Topic(&t.name)))
            .map(|t| {
                let ops = topic_ops(&t.name);
                Planned::Describe(t, ops)
            })
            .collect(),
        // Kafka serves topic ids from v12 (v10 and v11 have the fields but never served them):
        // before, a null name or an id makes every topic INVALID_REQUEST.
        Some(list)
            if version < 12
                && list
                    .iter()
                    .any(|t| t.name.is_none() || !t.topic_id.is_nil()) =>
        {
            list.into_iter()
                .map(|t| Planned::Invalid(t.name.unwrap_or_default(), t.topic_id))
                .collect()
        }
        // With any id in the request, Kafka resolves the ids only (name-only entries are
        // dropped, a name beside an id is ignored, duplicates collapse); no auto-creation.
        Some(list) if list.iter().any(|t| !t.topic_id.is_nil()) => {
            let mut seen = std::collections::HashSet::new();
            list.into_iter()
                .filter(|t| !t.topic_id.is_nil() && seen.insert(t.topic_id))
                .map(|t| match broker.topics.get_by_id(&t.topic_id) {
                    Some(topic)
                        if ctx.authorize(AclOperation::Describe, Resource::Topic(&topic.name)) =>
                    {
                        let ops = topic_ops(&topic.name);
                        Planned::Describe(topic, ops)
                    }
                    Some(_) => Planned::IdDenied(t.topic_id),
                    None => Planned::UnknownId(t.topic_id),
                })
                .collect()
        }
        Some(list) => list
            .into_iter()
            .map(|rt| {
                let name = rt.name.unwrap_or_default();
                if !ctx.authorize(AclOperation::Describe, Resource::Topic(&name)) {
                    return Planned::NameError(name, error_codes::denied(ResourceType::Topic));
                }
                if let Some(t) = broker.topics.get(&name) {
                    let ops = topic_ops(&t.name);
                    return Planned::Describe(t, ops);
                }
                if let Err(e) = validate_topic_name(&name) {
                    return Planned::NameError(name, error_codes::topic_error(&e));
                }
                if !allow_create {
                    return Planned::NameError(name, ResponseError::UnknownTopicOrPartition);
                }
                if !ctx.authorize(AclOperation::Create, Resource::Cluster)
                    && !ctx.authorize(AclOperation::Create, Resource::Topic(&name))
                {
                    return Planned::NameError(name, error_codes::denied(ResourceType::Topic));
                }
                let ops = topic_ops(&name);
                Planned::Create(name, ops)
            })
            .collect(),
    };
    let cluster_ops = if (8..=10).contains(&version) && req.include_cluster_authorized_operations {
        ctx.authorized_operations(Resource::Cluster, CLUSTER_OPERATIONS)
    } else {
        AUTHORIZED_OPERATIONS_OMITTED
    };
    let creates = plan.iter().any(|p| matches!(p, Planned::Create(..)));
    let broker = ctx.broker.clone();
    let listener = ctx.listener.clone();
    let respond = move || ResponseKind::Metadata(respond(&broker, &listener, plan, cluster_ops));
    if creates {
        Reply::blocking(respond, || {
            ResponseKind::Metadata(MetadataResponse::default())
        })
    } else {
        Reply::now(respond())
    }
}

fn respond(
    broker: &Broker,
    listener: &Listener,
    plan: Vec<Planned>,
    cluster_ops: i32,
) -> MetadataResponse {
    let failed = |name: TopicName, code: ResponseError| {
        MetadataResponseTopic::default()
            .with_name(Some(name))
            .with_topic_id(Uuid::nil())
            .with_error_code(code.code())
            .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
    };
    let topics = plan
        .into_iter()
        .map(|p| match p {
            Planned::Describe(t, ops) => describe_topic(broker, &t, ops),
            Planned::NameError(name, code) => failed(name, code),
            Planned::UnknownId(id) => MetadataResponseTopic::default()
                .with_name(None)
                .with_topic_id(id)
                .with_error_code(ResponseError::UnknownTopicId.code())
                .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
            Planned::IdDenied(id) => MetadataResponseTopic::default()
                .with_name(None)
                .with_topic_id(id)
                .with_error_code(error_codes::denied(ResourceType::Topic).code())
                .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
            Planned::Invalid(name, id) => failed(name, ResponseError::InvalidRequest).with_topic_id(id),
            Planned::Create(name, ops) => {
                match broker.auto_create_topic(&name) {
                    Ok(_) => {}
                    // Another connection created it first: describe what exists.
                    Err(TopicError::AlreadyExists(_)) => {}
                    Err(e) => {
                        tracing::warn!(topic = %name.as_str(), error = %e, "auto-creating topic failed");
                        return failed(name, error_codes::topic_error(&e));
                    }
                }
                match broker.topics.get(&name) {
                    Some(t) => describe_topic(broker, &t, ops),
                    None => failed(name, ResponseError::UnknownTopicOrPartition),
                }
            }
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(broker.config.node_id))
            .with_host(StrBytes::from_string(listener.advertised_host.clone()))
            .with_port(listener.advertised_port)])
        .with_cluster_id(Some(StrBytes::from_string(broker.cluster_id.clone())))
        .with_controller_id(BrokerId(broker.config.node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(cluster_ops)
}

fn describe_topic(broker: &Broker, topic: &Topic, ops: i32) -> MetadataResponseTopic {
    let node = BrokerId(broker.config.node_id);
    let partitions = topic
        .partitions()
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.index())
                .with_leader_id(node)
                .with_leader_epoch(p.leader_epoch())
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(topic.id)
        .with_is_internal(false)
        .with_partitions(partitions)
        .with_topic_authorized_operations(ops)
}
