//! Topic admin: CreateTopics (API 19), DeleteTopics (API 20), CreatePartitions (API 37).
//!
//! ACLs are checked first (as Kafka's controller does), then the work, which creates, persists
//! or deletes files, runs on the blocking pool.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_request::CreatableTopic;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{
    CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteTopicsRequest, DeleteTopicsResponse, ResponseKind, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::broker::Broker;
use crate::topics::config::TOPIC_CONFIGS;
use crate::topics::TopicError;

/// Kafka's DescribeConfigs/CreateTopics config sources.
const DYNAMIC_TOPIC_CONFIG: i8 = 1;
const STATIC_BROKER_CONFIG: i8 = 4;
const DEFAULT_CONFIG: i8 = 5;

/// Names that occur more than once in one request; Kafka answers each with INVALID_REQUEST.
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> HashMap<&'a str, usize> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for n in names {
        *counts.entry(n).or_default() += 1;
    }
    counts.retain(|_, c| *c > 1);
    counts
}

/// Handles CreateTopics.
pub fn create_topics(ctx: &RequestContext<'_>, req: CreateTopicsRequest) -> Reply {
    let cluster_create = ctx.authorize(AclOperation::Create, Resource::Cluster);
    let allowed: Vec<(bool, bool)> = req
        .topics
        .iter()
        .map(|t| {
            let topic = Resource::Topic(&t.name);
            (
                cluster_create || ctx.authorize(AclOperation::Create, topic),
                ctx.authorize(AclOperation::DescribeConfigs, topic),
            )
        })
        .collect();
    let broker = ctx.broker.clone();
    let version = ctx.version;
    Reply::blocking(
        move || ResponseKind::CreateTopics(create(&broker, req, version, &allowed)),
        || ResponseKind::CreateTopics(CreateTopicsResponse::default()),
    )
}

fn create(
    broker: &Broker,
    req: CreateTopicsRequest,
    version: i16,
    allowed: &[(bool, bool)],
) -> CreateTopicsResponse {
    let dups = duplicates(req.topics.iter().map(|t| t.name.as_str()));
    let topics = req
        .topics
        .iter()
        .zip(allowed)
        .map(|(t, &(may_create, may_describe_configs))| {
            let mut result = CreatableTopicResult::default()
                .with_name(t.name.clone())
                .with_num_partitions(-1)
                .with_replication_factor(-1);
            if dups.contains_key(t.name.as_str()) {
                return result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "Create topics request contains multiple entries for the topic {}",
                        t.name.as_str()
                    ))));
            }
            if !may_create {
                return result
                    .with_error_code(error_codes::denied(ResourceType::Topic).code())
                    .with_error_message(Some(StrBytes::from_static_str("Authorization failed.")));
            }
            match create_one(broker, t, req.validate_only) {
                Ok((id, partitions, configs)) => {
                    result.topic_id = id;
                    result.num_partitions = partitions;
                    result.replication_factor = 1;
                    if version >= 5 {
                        if may_describe_configs {
                            result.configs = Some(effective_configs(broker, &configs));
                        } else {
                            result.topic_config_error_code =
                                error_codes::denied(ResourceType::Topic).code();
                        }
                    }
                    result
                }
                Err(e) => {
                    let code = error_codes::topic_error(&e);
                    result.error_code = code.code();
                    result.error_message = Some(StrBytes::from_string(e.to_string()));
                    result
                }
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn create_one(
    broker: &Broker,
    t: &CreatableTopic,
    validate_only: bool,
) -> Result<(Uuid, i32, BTreeMap<String, String>), TopicError> {
    let mut configs = BTreeMap::new();
    for c in &t.configs {
        let value = c.value.as_ref().ok_or_else(|| {
            TopicError::InvalidConfig(format!(
                "Null value not supported for topic configs: {}",
                c.name.as_str()
            ))
        })?;
        configs.insert(c.name.to_string(), value.to_string());
    }
    let (partitions, replication_factor) = if t.assignments.is_empty() {
        let partitions = if t.num_partitions == -1 {
            broker.config.num_partitions
        } else {
            t.num_partitions
        };
        let rf = if t.replication_factor == -1 {
            broker.config.default_replication_factor
        } else {
            t.replication_factor as i32
        };
        (partitions, rf)
    } else {
        if t.num_partitions != -1 || t.replication_factor != -1 {
            return Err(TopicError::InvalidRequest(
                "Both numPartitions or replicationFactor and replicasAssignments were set. Both cannot be used at the same time.".into(),
            ));
        }
        for a in &t.assignments {
            if a.broker_ids.len() != 1 || a.broker_ids[0].0 != broker.config.node_id {
                return Err(TopicError::InvalidReplicaAssignment(format!(
                    "partition {} assigned to brokers {:?}; the only broker is {}",
                    a.partition_index,
                    a.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>(),
                    broker.config.node_id
                )));
            }
        }
        (t.assignments.len() as i32, 1)
    };
    let id = broker.topics.create_topic(
        &t.name,
        partitions,
        replication_factor,
        configs.clone(),
        validate_only,
    )?;
    Ok((id, partitions, configs))
}

/// Every topic config with its value and source, as CreateTopics v5+ returns them.
fn effective_configs(
    broker: &Broker,
    overrides: &BTreeMap<String, String>,
) -> Vec<CreatableTopicConfigs> {
    TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let (value, source) = match overrides.get(def.name) {
                Some(v) => (v.clone(), DYNAMIC_TOPIC_CONFIG),
                None => match def.broker_key.and_then(|k| broker.config.explicit.get(k)) {
                    Some(v) => (v.clone(), STATIC_BROKER_CONFIG),
                    None => (
                        broker.config.topic_default(def.name).unwrap_or_default(),
                        DEFAULT_CONFIG,
                    ),
                },
            };
            CreatableTopicConfigs::default()
                .with_name(StrBytes::from_static_str(def.name))
                .with_value(Some(StrBytes::from_string(value)))
                .with_config_source(source)
        })
        .collect()
}

/// Handles DeleteTopics, by name (v1+) or by id (v6).
pub fn delete_topics(ctx: &RequestContext<'_>, req: DeleteTopicsRequest) -> Reply {
    let version = ctx.version;
    let targets: Vec<(Option<TopicName>, Uuid)> = if version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name, t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n), Uuid::nil()))
            .collect()
    };
    // Kafka's controller: DELETE on the cluster, or DESCRIBE and DELETE on the topic (by its
    // name, also when the request names it by id).
    let cluster_delete = ctx.authorize(AclOperation::Delete, Resource::Cluster);
    let checked: Vec<(Option<TopicName>, Uuid, Access)> = targets
        .into_iter()
        .map(|(name, id)| {
            let real_name = match &name {
                Some(n) => Some(n.to_string()),
                None => ctx.broker.topics.get_by_id(&id).map(|t| t.name.clone()),
            };
            let access = match real_name {
                _ if cluster_delete => Access::Allowed,
                None => Access::Allowed,
                Some(n) if !ctx.authorize(AclOperation::Describe, Resource::Topic(&n)) => {
                    Access::Hidden
                }
                Some(n) if !ctx.authorize(AclOperation::Delete, Resource::Topic(&n)) => {
                    Access::Denied
                }
                Some(_) => Access::Allowed,
            };
            (name, id, access)
        })
        .collect();
    let broker = ctx.broker.clone();
    Reply::blocking(
        move || ResponseKind::DeleteTopics(delete(&broker, checked)),
        || ResponseKind::DeleteTopics(DeleteTopicsResponse::default()),
    )
}

/// What the principal may do with a topic it asked to delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// Delete it.
    Allowed,
    /// Not even see it: refused, and a topic named by id is not named in the answer.
    Hidden,
    /// See it but not delete it: refused.
    Denied,
}

fn delete(
    broker: &Broker,
    targets: Vec<(Option<TopicName>, Uuid, Access)>,
) -> DeleteTopicsResponse {
    let deletion_enabled = broker.config.delete_topic_enable;
    let responses = targets
        .into_iter()
        .map(|(name, id, access)| {
            let mut result = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(id);
            if access != Access::Allowed {
                return result.with_error_code(error_codes::denied(ResourceType::Topic).code());
            }
            let topic = match &name {
                Some(n) => broker.topics.get(n),
                None => broker.topics.get_by_id(&id),
            };
            let Some(topic) = topic else {
                let code = if name.is_some() {
                    ResponseError::UnknownTopicOrPartition
                } else {
                    ResponseError::UnknownTopicId
                };
                return result.with_error_code(code.code());
            };
            result.name = Some(TopicName(StrBytes::from_string(topic.name.clone())));
            result.topic_id = topic.id;
            if !deletion_enabled {
                return result.with_error_code(ResponseError::TopicDeletionDisabled.code());
            }
            match broker.topics.delete_topic(&topic.name) {
                Ok(_) => result,
                Err(e) => result
                    .with_error_code(error_codes::topic_error(&e).code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

/// Handles CreatePartitions.
pub fn create_partitions(ctx: &RequestContext<'_>, req: CreatePartitionsRequest) -> Reply {
    let allowed: Vec<bool> = req
        .topics
        .iter()
        .map(|t| ctx.authorize(AclOperation::Alter, Resource::Topic(&t.name)))
        .collect();
    let broker = ctx.broker.clone();
    Reply::blocking(
        move || ResponseKind::CreatePartitions(grow(&broker, req, &allowed)),
        || ResponseKind::CreatePartitions(CreatePartitionsResponse::default()),
    )
}

fn grow(
    broker: &Broker,
    req: CreatePartitionsRequest,
    allowed: &[bool],
) -> CreatePartitionsResponse {
    let dups = duplicates(req.topics.iter().map(|t| t.name.as_str()));
    let node_id = broker.config.node_id;
    let results = req
        .topics
        .iter()
        .zip(allowed)
        .map(|(t, &allowed)| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if !allowed && !dups.contains_key(t.name.as_str()) {
                return result.with_error_code(error_codes::denied(ResourceType::Topic).code());
            }
            let outcome = if dups.contains_key(t.name.as_str()) {
                Err(TopicError::InvalidRequest(format!(
                    "Create partitions request contains multiple entries for the topic {}",
                    t.name.as_str()
                )))
            } else if let Some(bad) = t
                .assignments
                .iter()
                .flatten()
                .find(|a| a.broker_ids.len() != 1 || a.broker_ids[0].0 != node_id)
            {
                Err(TopicError::InvalidReplicaAssignment(format!(
                    "assignment to brokers {:?}; the only broker is {node_id}",
                    bad.broker_ids.iter().map(|b| b.0).collect::<Vec<_>>(),
                )))
            } else {
                broker
                    .topics
                    .create_partitions(&t.name, t.count, req.validate_only)
            };
            match outcome {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(error_codes::topic_error(&e).code())
                    .with_error_message(Some(StrBytes::from_string(e.to_string()))),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}
