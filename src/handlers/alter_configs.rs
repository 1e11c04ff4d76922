//! AlterConfigs (API 33, v0-2) and IncrementalAlterConfigs (API 44, v0-1): topic settings
//! changed live and persisted (Kafka's `ConfigAdminManager` on the broker, then the
//! controller's `ConfigurationControlManager`).
//!
//! Per resource, in Kafka's order:
//! - A resource named twice in one request: INVALID_REQUEST for each.
//! - TOPIC:
//!   - ALTER_CONFIGS on the topic (TOPIC_AUTHORIZATION_FAILED, checked before existence).
//!   - The name: empty is INVALID_REQUEST, illegal INVALID_TOPIC_EXCEPTION.
//!   - The operations: a null value outside DELETE, a key twice or an unknown operation is
//!     INVALID_REQUEST; APPEND/SUBTRACT on a setting that is not a list is INVALID_CONFIG.
//!   - Names and values are validated before existence (INVALID_CONFIG even for an unknown
//!     topic), then the topic must exist (UNKNOWN_TOPIC_OR_PARTITION).
//!   - AlterConfigs replaces every override; IncrementalAlterConfigs changes the named ones.
//!     `validate_only` stops after validation.
//! - BROKER: the name must be "" (the cluster-wide default) or this node's id
//!   (INVALID_REQUEST); ALTER_CONFIGS on the cluster. Only topic defaults change at runtime
//!   (`topics::dynamic`): any other key, or an invalid value, is INVALID_REQUEST ("Cannot update
//!   these configs dynamically"), as Kafka wraps broker config errors. Persisted in
//!   `dynamic-broker-configs.json`; every topic without an override follows at once.
//! - GROUP: ALTER_CONFIGS on the group (GROUP_AUTHORIZATION_FAILED); any non-empty name, no
//!   existence check; values validated by `resource_configs::group` (INVALID_CONFIG).
//! - CLIENT_METRICS: ALTER_CONFIGS on the cluster; any non-empty name; the whole resulting set
//!   validated by `resource_configs::client_metrics`; deleting every setting deletes the
//!   subscription. Both persisted in `resource-configs.json`.
//! - BROKER_LOGGER (IncrementalAlterConfigs only; AlterConfigs answers INVALID_REQUEST): this
//!   node's id; SET a level or DELETE a logger's own level (`logging`), all checked before any
//!   is applied; APPEND/SUBTRACT are INVALID_REQUEST. Live only, as Kafka's.
//!
//! The change is persisted in `topics.json` before the answer and applied to every partition.

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
    ResponseKind,
};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::{error_codes, Reply};
use crate::broker::Broker;
use crate::logging;
use crate::resource_configs::{self, Kind as RcKind, ValueType};
use crate::topics::config::lookup;
use crate::topics::dynamic::is_dynamic;
use crate::topics::{validate_topic_name, Layer, TopicError};

/// `ConfigResource.Type` codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;

/// Topic settings of Kafka's type LIST (APPEND and SUBTRACT apply to them only).
const LIST_CONFIGS: [&str; 3] = [
    "cleanup.policy",
    "leader.replication.throttled.replicas",
    "follower.replication.throttled.replicas",
];

/// One operation on one setting.
#[derive(Debug, Clone)]
enum Op {
    Set(String),
    Delete,
    Append(String),
    Subtract(String),
}

/// One resource of a request, in a shape both APIs share.
struct Change {
    resource_type: i8,
    name: String,
    ops: Result<Vec<(String, Op)>, String>,
    /// AlterConfigs: the settings given replace every override.
    replace: bool,
}

type Outcome = Option<(ResponseError, String)>;

fn invalid(message: impl Into<String>) -> Outcome {
    Some((ResponseError::InvalidRequest, message.into()))
}

/// The per-resource answers; both APIs have a response type of this same shape.
macro_rules! resource_responses {
    ($ty:ty, $results:expr) => {
        $results
            .into_iter()
            .map(|(t, name, outcome)| {
                let (code, message) = split(outcome);
                <$ty>::default()
                    .with_resource_type(t)
                    .with_resource_name(StrBytes::from_string(name))
                    .with_error_code(code)
                    .with_error_message(message)
            })
            .collect()
    };
}

/// IncrementalAlterConfigs: SET, DELETE, APPEND, SUBTRACT.
pub fn incremental_alter_configs(
    ctx: &RequestContext<'_>,
    req: IncrementalAlterConfigsRequest,
) -> Reply {
    let changes: Vec<Change> = req
        .resources
        .into_iter()
        .map(|r| Change {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: r
                .configs
                .into_iter()
                .map(|c| {
                    let name = c.name.to_string();
                    let value = c.value.map(|v| v.to_string());
                    let op = match (c.config_operation, value) {
                        (1, _) => Op::Delete,
                        (0, Some(v)) => Op::Set(v),
                        (2, Some(v)) => Op::Append(v),
                        (3, Some(v)) => Op::Subtract(v),
                        (0..=3, None) => {
                            return Err(format!("Null value not supported for : {name}"))
                        }
                        (other, _) => {
                            return Err(format!("Unknown alter config operation {other}"))
                        }
                    };
                    Ok((name, op))
                })
                .collect(),
            replace: false,
        })
        .collect();
    let failed =
        || ResponseKind::IncrementalAlterConfigs(IncrementalAlterConfigsResponse::default());
    run(ctx, changes, req.validate_only, failed, |results| {
        ResponseKind::IncrementalAlterConfigs(
            IncrementalAlterConfigsResponse::default().with_responses(resource_responses!(
                incremental_alter_configs_response::AlterConfigsResourceResponse,
                results
            )),
        )
    })
}

/// AlterConfigs: the given settings become the resource's whole set of overrides.
pub fn alter_configs(ctx: &RequestContext<'_>, req: AlterConfigsRequest) -> Reply {
    let changes: Vec<Change> = req
        .resources
        .into_iter()
        .map(|r| Change {
            resource_type: r.resource_type,
            name: r.resource_name.to_string(),
            ops: r
                .configs
                .into_iter()
                .map(|c| {
                    let name = c.name.to_string();
                    match c.value {
                        Some(v) => Ok((name, Op::Set(v.to_string()))),
                        None => Err(format!("Null value not supported for : {name}")),
                    }
                })
                .collect(),
            replace: true,
        })
        .collect();
    let failed = || ResponseKind::AlterConfigs(AlterConfigsResponse::default());
    run(ctx, changes, req.validate_only, failed, |results| {
        ResponseKind::AlterConfigs(AlterConfigsResponse::default().with_responses(
            resource_responses!(
                alter_configs_response::AlterConfigsResourceResponse,
                results
            ),
        ))
    })
}

fn split(outcome: Outcome) -> (i16, Option<StrBytes>) {
    match outcome {
        None => (0, None),
        Some((code, message)) => (code.code(), Some(StrBytes::from_string(message))),
    }
}

type Results = Vec<(i8, String, Outcome)>;

/// Authorizes now (in request order), then applies the changes on the blocking pool: each
/// topic change is persisted before the answer.
fn run(
    ctx: &RequestContext<'_>,
    changes: Vec<Change>,
    validate_only: bool,
    failed: fn() -> ResponseKind,
    respond: fn(Results) -> ResponseKind,
) -> Reply {
    let mut seen: HashMap<(i8, String), usize> = HashMap::new();
    for c in &changes {
        *seen.entry((c.resource_type, c.name.clone())).or_default() += 1;
    }
    let planned: Vec<(Change, Outcome)> = changes
        .into_iter()
        .map(|c| {
            let outcome = if seen[&(c.resource_type, c.name.clone())] > 1 {
                invalid("Each resource must appear at most once.")
            } else {
                precheck(ctx, &c)
            };
            (c, outcome)
        })
        .collect();
    let broker = ctx.broker.clone();
    Reply::blocking(
        move || {
            let results = planned
                .into_iter()
                .map(|(c, outcome)| {
                    let outcome = outcome.or_else(|| apply(&broker, &c, validate_only));
                    (c.resource_type, c.name, outcome)
                })
                .collect();
            respond(results)
        },
        failed,
    )
}

/// The checks that need the request context (authorization) or no log: None to go on.
fn precheck(ctx: &RequestContext<'_>, c: &Change) -> Outcome {
    match c.resource_type {
        RESOURCE_TOPIC => {
            if !ctx.authorize(AclOperation::AlterConfigs, Resource::Topic(&c.name)) {
                let code = error_codes::denied(ResourceType::Topic);
                return Some((code, code.to_string()));
            }
            if c.name.is_empty() {
                return invalid("Default topic resources are not allowed.");
            }
            if let Err(e) = validate_topic_name(&c.name) {
                return Some((error_codes::topic_error(&e), e.to_string()));
            }
            ops_error(c)
        }
        RESOURCE_BROKER => {
            let node = ctx.broker.config.node_id;
            if !c.name.is_empty() && c.name != node.to_string() {
                return invalid(format!(
                    "Unexpected broker id, expected {node}, but received {}",
                    c.name
                ));
            }
            if let Some(e) = ops_error(c) {
                return Some(e);
            }
            if !ctx.authorize(AclOperation::AlterConfigs, Resource::Cluster) {
                let code = error_codes::denied(ResourceType::Cluster);
                return Some((code, code.to_string()));
            }
            let fixed: Vec<&str> = c
                .ops
                .as_ref()
                .map(|ops| {
                    ops.iter()
                        .map(|(k, _)| k.as_str())
                        .filter(|k| !is_dynamic(k))
                        .collect()
                })
                .unwrap_or_default();
            if fixed.is_empty() {
                return None;
            }
            invalid(format!(
                "Cannot update these configs dynamically: [{}]",
                fixed.join(", ")
            ))
        }
        RESOURCE_BROKER_LOGGER => {
            if c.replace {
                return invalid("Unknown resource type 8");
            }
            if let Some(e) = ops_error(c) {
                return Some(e);
            }
            if !ctx.authorize(AclOperation::AlterConfigs, Resource::Cluster) {
                let code = error_codes::denied(ResourceType::Cluster);
                return Some((code, code.to_string()));
            }
            let node = ctx.broker.config.node_id;
            match c.name.parse::<i32>() {
                Err(_) => invalid(format!("Node id must be an integer, but it is: {}", c.name)),
                Ok(id) if id != node => invalid(format!(
                    "Unexpected node id. Expected {node}, but received {id}"
                )),
                Ok(_) => None,
            }
        }
        RESOURCE_CLIENT_METRICS => {
            if let Some(e) = ops_error(c) {
                return Some(e);
            }
            if !ctx.authorize(AclOperation::AlterConfigs, Resource::Cluster) {
                let code = error_codes::denied(ResourceType::Cluster);
                return Some((code, code.to_string()));
            }
            if c.name.is_empty() {
                return invalid("Subscription name can't be empty");
            }
            None
        }
        RESOURCE_GROUP => {
            if !ctx.authorize(AclOperation::AlterConfigs, Resource::Group(&c.name)) {
                let code = error_codes::denied(ResourceType::Group);
                return Some((code, code.to_string()));
            }
            if c.name.is_empty() {
                return invalid("Group name must not be empty");
            }
            ops_error(c)
        }
        other => invalid(format!(
            "Unsupported resource type {other} for altering configs"
        )),
    }
}

/// Applies log level changes: every one is checked before any is made (Kafka's
/// `RuntimeLoggerManager`); nothing is persisted.
fn apply_loggers(ops: &[(String, Op)], validate_only: bool) -> Outcome {
    let levels = logging::levels();
    let mut changes = Vec::new();
    for (logger, op) in ops {
        let level = match op {
            Op::Set(level) => Some(level.clone()),
            Op::Delete => None,
            Op::Append(_) => {
                return invalid("APPEND operation is not allowed for the BROKER_LOGGER resource")
            }
            Op::Subtract(_) => {
                return invalid("SUBTRACT operation is not allowed for the BROKER_LOGGER resource")
            }
        };
        if let Err(e) = levels.check(logger, level.as_deref()) {
            return Some((error_codes::logger_error(&e), e.to_string()));
        }
        changes.push((logger.clone(), level));
    }
    if !validate_only {
        levels.apply(&changes);
    }
    None
}

/// Applies a group's or client metrics subscription's settings (`resource_configs`).
fn apply_resource(
    broker: &Broker,
    kind: RcKind,
    c: &Change,
    ops: &[(String, Op)],
    validate_only: bool,
) -> Outcome {
    let mut next = if c.replace {
        BTreeMap::new()
    } else {
        broker.resource_configs.get(kind, &c.name)
    };
    let list_base = |key: &str| match (kind, resource_configs::lookup(kind, key)) {
        // Kafka's controller splits only topic and broker lists.
        (RcKind::ClientMetrics, _) => Ok(None),
        (RcKind::Group, None) => Err(format!("Unknown group config name: {key}")),
        (RcKind::Group, Some(def)) => {
            Ok((def.value_type == ValueType::List).then(|| (def.default)(&broker.config)))
        }
    };
    if let Some(error) = apply_ops(&mut next, ops, list_base) {
        return Some(error);
    }
    match broker
        .resource_configs
        .alter(kind, &c.name, next, validate_only, &broker.config)
    {
        Ok(()) => {
            if !validate_only {
                tracing::info!(resource = %c.name, ?kind, "resource configs altered");
            }
            None
        }
        Err(e) => Some((error_codes::resource_config_error(&e), e.to_string())),
    }
}

/// Malformed operations: a null value, a key named twice.
fn ops_error(c: &Change) -> Outcome {
    match &c.ops {
        Err(message) => invalid(message.clone()),
        Ok(ops) => {
            let mut keys = std::collections::HashSet::new();
            match ops.iter().find(|(k, _)| !keys.insert(k.as_str())) {
                Some((k, _)) => invalid(format!("Duplicate key {k} in the request")),
                None => None,
            }
        }
    }
}

/// Applies the operations to `settings`: SET, DELETE, and APPEND/SUBTRACT on list settings.
/// `list_base` tells a list's value when `settings` has none (`Ok(None)`: not a list; `Err`: an
/// unknown key); both refusals are INVALID_CONFIG, as Kafka answers.
fn apply_ops(
    settings: &mut BTreeMap<String, String>,
    ops: &[(String, Op)],
    list_base: impl Fn(&str) -> Result<Option<String>, String>,
) -> Outcome {
    for (key, op) in ops {
        let (items, append) = match op {
            Op::Set(v) => {
                settings.insert(key.clone(), v.clone());
                continue;
            }
            Op::Delete => {
                settings.remove(key);
                continue;
            }
            Op::Append(v) => (v, true),
            Op::Subtract(v) => (v, false),
        };
        let default = match list_base(key) {
            Err(message) => return Some((ResponseError::InvalidConfig, message)),
            Ok(None) => {
                let verb = if append { "APPEND" } else { "SUBTRACT" };
                return Some((
                    ResponseError::InvalidConfig,
                    format!("Can't {verb} to key {key} because its type is not LIST."),
                ));
            }
            Ok(Some(default)) => default,
        };
        let base = settings.get(key).cloned().unwrap_or(default);
        let mut list = parts(&base);
        for item in parts(items) {
            if append {
                if !list.contains(&item) {
                    list.push(item);
                }
            } else {
                list.retain(|i| *i != item);
            }
        }
        settings.insert(key.clone(), list.join(","));
    }
    None
}

/// Applies a resource that passed the prechecks (blocking: its settings are written).
fn apply(broker: &Broker, c: &Change, validate_only: bool) -> Outcome {
    let Ok(ops) = &c.ops else {
        return invalid("malformed operations");
    };
    match c.resource_type {
        RESOURCE_BROKER => return apply_broker(broker, c, ops, validate_only),
        RESOURCE_GROUP => return apply_resource(broker, RcKind::Group, c, ops, validate_only),
        RESOURCE_CLIENT_METRICS => {
            return apply_resource(broker, RcKind::ClientMetrics, c, ops, validate_only)
        }
        RESOURCE_BROKER_LOGGER => return apply_loggers(ops, validate_only),
        _ => {}
    }
    let mut next = if c.replace {
        BTreeMap::new()
    } else {
        broker
            .topics
            .get(&c.name)
            .map(|t| t.config().overrides().clone())
            .unwrap_or_default()
    };
    let list_base = |key: &str| match lookup(key) {
        None => Err(format!("Unknown topic config name: {key}")),
        Some(def) => Ok(LIST_CONFIGS.contains(&key).then(|| def.default.to_string())),
    };
    if let Some(error) = apply_ops(&mut next, ops, list_base) {
        return Some(error);
    }
    match broker.topics.alter_config(&c.name, next, validate_only) {
        Ok(()) => {
            if !validate_only {
                tracing::info!(topic = %c.name, "topic configs altered");
            }
            None
        }
        Err(e @ TopicError::Unknown(_)) => Some((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic {} does not exist: {e}", c.name),
        )),
        Err(e) => Some((error_codes::topic_error(&e), e.to_string())),
    }
}

/// Applies a broker resource: the layer of this broker (its id) or the cluster default ("").
fn apply_broker(broker: &Broker, c: &Change, ops: &[(String, Op)], validate_only: bool) -> Outcome {
    let layer = if c.name.is_empty() {
        Layer::Default
    } else {
        Layer::Broker
    };
    let mut next = if c.replace {
        BTreeMap::new()
    } else {
        broker.topics.dynamic_broker_configs().layer(layer).clone()
    };
    // The one list among the dynamic broker settings.
    let list_base = |key: &str| {
        Ok((key == "log.cleanup.policy").then(|| {
            broker
                .topics
                .effective()
                .raw
                .get(key)
                .cloned()
                .unwrap_or_default()
        }))
    };
    if let Some(error) = apply_ops(&mut next, ops, list_base) {
        return Some(error);
    }
    match broker
        .topics
        .alter_broker_config(layer, next, validate_only)
    {
        Ok(()) => {
            if !validate_only {
                tracing::info!(broker = %c.name, "dynamic broker configs altered");
            }
            None
        }
        // Kafka wraps a broker config's validation failure in INVALID_REQUEST.
        Err(TopicError::InvalidRequest(message)) => invalid(message),
        Err(e) => Some((error_codes::topic_error(&e), e.to_string())),
    }
}

fn parts(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}
