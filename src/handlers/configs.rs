//! DescribeConfigs (API 32): every topic setting Kafka defines with its effective value, source
//! and synonyms, the broker's settings, a group's or client metrics subscription's settings, and
//! the broker's loggers with their levels (Kafka's `ConfigHelper.describeConfigs`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use kafka_protocol::protocol::StrBytes;

use super::context::{AclOperation, RequestContext, Resource, ResourceType};
use super::error_codes;
use crate::broker::Broker;
use crate::config::{Config, BROKER_DEFAULTS};
use crate::logging;
use crate::resource_configs::{self, Kind as RcKind, ValueType};
use crate::topics::config::{Kind, TOPIC_CONFIGS};
use crate::topics::dynamic::is_dynamic;
use crate::topics::validate_topic_name;
use crate::topics::DynamicBrokerConfigs;

/// `ConfigResource.Type` codes.
const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;
const RESOURCE_CLIENT_METRICS: i8 = 16;
const RESOURCE_GROUP: i8 = 32;

/// `DescribeConfigsResponse.ConfigSource` codes.
const SOURCE_DYNAMIC_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_BROKER: i8 = 2;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;
const SOURCE_BROKER_LOGGER: i8 = 6;
const SOURCE_CLIENT_METRICS: i8 = 7;
const SOURCE_GROUP: i8 = 8;

/// `ConfigDef.Type` codes (the `config_type` field, v3+).
const TYPE_UNKNOWN: i8 = 0;
const TYPE_BOOLEAN: i8 = 1;
const TYPE_STRING: i8 = 2;
const TYPE_INT: i8 = 3;
const TYPE_LONG: i8 = 5;
const TYPE_DOUBLE: i8 = 6;
const TYPE_LIST: i8 = 7;

/// One described setting before encoding.
struct Entry {
    name: String,
    value: String,
    source: i8,
    read_only: bool,
    config_type: i8,
    /// Most specific first, the entry's own source included (Kafka's order).
    synonyms: Vec<(String, String, i8)>,
}

/// Answers DescribeConfigs for topics and this broker.
pub fn describe_configs(
    ctx: &RequestContext<'_>,
    req: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let (broker, version) = (ctx.broker, ctx.version);
    let results = req
        .resources
        .into_iter()
        .map(|resource| {
            let name = resource.resource_name.to_string();
            let entries = match resource.resource_type {
                RESOURCE_TOPIC
                    if !ctx.authorize(AclOperation::DescribeConfigs, Resource::Topic(&name)) =>
                {
                    Err(denied(ResourceType::Topic))
                }
                RESOURCE_BROKER
                    if !ctx.authorize(AclOperation::DescribeConfigs, Resource::Cluster) =>
                {
                    Err(denied(ResourceType::Cluster))
                }
                RESOURCE_GROUP
                    if !ctx.authorize(AclOperation::DescribeConfigs, Resource::Group(&name)) =>
                {
                    Err(denied(ResourceType::Group))
                }
                RESOURCE_CLIENT_METRICS | RESOURCE_BROKER_LOGGER
                    if !ctx.authorize(AclOperation::DescribeConfigs, Resource::Cluster) =>
                {
                    Err(denied(ResourceType::Cluster))
                }
                RESOURCE_TOPIC => topic_entries(broker, &name),
                RESOURCE_GROUP => resource_entries(broker, RcKind::Group, &name),
                RESOURCE_CLIENT_METRICS => resource_entries(broker, RcKind::ClientMetrics, &name),
                RESOURCE_BROKER_LOGGER => logger_entries(broker.config.node_id, &name),
                RESOURCE_BROKER => broker_entries(
                    &broker.config,
                    &broker.topics.dynamic_broker_configs(),
                    &name,
                ),
                other => Err((
                    ResponseError::InvalidRequest,
                    format!("Unsupported resource type {other} for DescribeConfigs"),
                )),
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name);
            match entries {
                Ok(entries) => {
                    let wanted = resource
                        .configuration_keys
                        .map(|keys| keys.iter().map(|k| k.to_string()).collect::<Vec<String>>());
                    let configs = entries
                        .into_iter()
                        .filter(|e| wanted.as_ref().is_none_or(|w| w.contains(&e.name)))
                        .map(|e| encode(e, req.include_synonyms, version))
                        .collect();
                    result.with_configs(configs)
                }
                Err((error, message)) => result
                    .with_error_code(error.code())
                    .with_error_message(Some(StrBytes::from_string(message))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// A resource the principal may not describe: Kafka's code, and its message.
fn denied(resource_type: ResourceType) -> (ResponseError, String) {
    let code = error_codes::denied(resource_type);
    (code, code.to_string())
}

fn encode(e: Entry, include_synonyms: bool, version: i16) -> DescribeConfigsResourceResult {
    let mut out = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_string(e.name))
        .with_value(Some(StrBytes::from_string(e.value)))
        .with_read_only(e.read_only)
        .with_config_source(e.source);
    if include_synonyms {
        out = out.with_synonyms(
            e.synonyms
                .into_iter()
                .map(|(name, value, source)| {
                    DescribeConfigsSynonym::default()
                        .with_name(StrBytes::from_string(name))
                        .with_value(Some(StrBytes::from_string(value)))
                        .with_source(source)
                })
                .collect(),
        );
    }
    // The field exists from v3; the encoder refuses a non-default value before.
    if version >= 3 {
        out = out.with_config_type(e.config_type);
    }
    out
}

fn topic_entries(broker: &Broker, name: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    if validate_topic_name(name).is_err() {
        return Err((
            ResponseError::InvalidTopicException,
            format!("Invalid topic name '{name}'"),
        ));
    }
    let Some(topic) = broker.topics.get(name) else {
        return Err((
            ResponseError::UnknownTopicOrPartition,
            format!("Topic '{name}' does not exist."),
        ));
    };
    let config = topic.config();
    let overrides = config.overrides();
    let broker_config = &broker.config;
    let dynamic = broker.topics.dynamic_broker_configs();
    Ok(TOPIC_CONFIGS
        .iter()
        .map(|def| {
            let mut synonyms = Vec::new();
            if let Some(v) = overrides.get(def.name) {
                synonyms.push((def.name.to_string(), v.clone(), SOURCE_DYNAMIC_TOPIC));
            }
            // The broker key's value stands in for the topic's when it has no override.
            if let Some(key) = def.broker_key {
                dynamic_synonyms(&dynamic, key, &mut synonyms);
                if let Some(v) = static_value(broker_config, key) {
                    synonyms.push((key.to_string(), v, SOURCE_STATIC_BROKER));
                }
                let default = builtin_default(key).unwrap_or(def.default);
                synonyms.push((key.to_string(), default.to_string(), SOURCE_DEFAULT));
            }
            let (value, source) = match synonyms.first() {
                Some((_, v, s)) => (v.clone(), *s),
                None => (def.default.to_string(), SOURCE_DEFAULT),
            };
            Entry {
                name: def.name.to_string(),
                value,
                source,
                read_only: false,
                config_type: kind_type(def.kind),
                synonyms,
            }
        })
        .collect())
}

/// Every logger with its effective level (`logging`), for this broker's id only.
fn logger_entries(node_id: i32, name: &str) -> Result<Vec<Entry>, (ResponseError, String)> {
    let invalid = |m: String| Err((ResponseError::InvalidRequest, m));
    if name.is_empty() {
        return invalid("Broker id must not be empty".to_string());
    }
    match name.parse::<i32>() {
        Err(_) => return invalid(format!("Broker id must be an integer, but it is: {name}")),
        Ok(id) if id != node_id => {
            return invalid(format!(
                "Unexpected broker id, expected {node_id} but received {name}"
            ))
        }
        Ok(_) => {}
    }
    Ok(logging::levels()
        .describe()
        .into_iter()
        .map(|(logger, level)| Entry {
            name: logger,
            value: level,
            source: SOURCE_BROKER_LOGGER,
            read_only: false,
            config_type: TYPE_UNKNOWN,
            synonyms: Vec::new(),
        })
        .collect())
}

/// A group's or client metrics subscription's settings (any non-empty name, set or not, as
/// Kafka 4.1+ answers): its own values as GROUP_CONFIG / CLIENT_METRICS_CONFIG, the others at
/// their default (a group's from the broker's `group.*` settings) with source DEFAULT_CONFIG.
fn resource_entries(
    broker: &Broker,
    kind: RcKind,
    name: &str,
) -> Result<Vec<Entry>, (ResponseError, String)> {
    if name.is_empty() {
        let message = match kind {
            RcKind::Group => "Group name must not be empty",
            RcKind::ClientMetrics => "Client metrics subscription name must not be empty",
        };
        return Err((ResponseError::InvalidRequest, message.to_string()));
    }
    let set = broker.resource_configs.get(kind, name);
    let own = match kind {
        RcKind::Group => SOURCE_GROUP,
        RcKind::ClientMetrics => SOURCE_CLIENT_METRICS,
    };
    Ok(resource_configs::defs(kind)
        .iter()
        .map(|def| {
            let (value, source) = match set.get(def.name) {
                Some(v) => (v.clone(), own),
                None => ((def.default)(&broker.config), SOURCE_DEFAULT),
            };
            Entry {
                name: def.name.to_string(),
                synonyms: vec![(def.name.to_string(), value.clone(), source)],
                value,
                source,
                read_only: false,
                config_type: value_type(def.value_type),
            }
        })
        .collect())
}

fn value_type(t: ValueType) -> i8 {
    match t {
        ValueType::Int => TYPE_INT,
        ValueType::String => TYPE_STRING,
        ValueType::List => TYPE_LIST,
    }
}

/// The dynamic values of a broker key, most specific first (Kafka's synonym order).
fn dynamic_synonyms(
    dynamic: &DynamicBrokerConfigs,
    key: &str,
    out: &mut Vec<(String, String, i8)>,
) {
    if let Some(v) = dynamic.broker.get(key) {
        out.push((key.to_string(), v.clone(), SOURCE_DYNAMIC_BROKER));
    }
    if let Some(v) = dynamic.default.get(key) {
        out.push((key.to_string(), v.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER));
    }
}

fn broker_entries(
    config: &Config,
    dynamic: &DynamicBrokerConfigs,
    name: &str,
) -> Result<Vec<Entry>, (ResponseError, String)> {
    // An empty name asks for the cluster-wide dynamic defaults.
    if name.is_empty() {
        return Ok(dynamic
            .default
            .iter()
            .map(|(k, v)| Entry {
                name: k.clone(),
                value: v.clone(),
                source: SOURCE_DYNAMIC_DEFAULT_BROKER,
                read_only: false,
                config_type: TOPIC_CONFIGS
                    .iter()
                    .find(|d| d.broker_key == Some(k.as_str()))
                    .map_or_else(|| guess_type(k, v), |d| kind_type(d.kind)),
                synonyms: vec![(k.clone(), v.clone(), SOURCE_DYNAMIC_DEFAULT_BROKER)],
            })
            .collect());
    }
    if name.parse::<i32>() != Ok(config.node_id) {
        return Err((
            ResponseError::InvalidRequest,
            format!(
                "Unexpected broker id, expected {} or empty string, but received {name}",
                config.node_id
            ),
        ));
    }
    let mut keys: Vec<&str> = BROKER_DEFAULTS.iter().map(|(k, _)| *k).collect();
    keys.extend(TOPIC_CONFIGS.iter().filter_map(|d| d.broker_key));
    keys.sort_unstable();
    keys.dedup();
    Ok(keys
        .into_iter()
        .map(|key| {
            let topic_def = TOPIC_CONFIGS.iter().find(|d| d.broker_key == Some(key));
            let default = builtin_default(key)
                .or_else(|| topic_def.map(|d| d.default))
                .unwrap_or_default()
                .to_string();
            let mut synonyms = Vec::new();
            dynamic_synonyms(dynamic, key, &mut synonyms);
            if let Some(v) = static_value(config, key) {
                synonyms.push((key.to_string(), v, SOURCE_STATIC_BROKER));
            }
            synonyms.push((key.to_string(), default, SOURCE_DEFAULT));
            let (value, source) = (synonyms[0].1.clone(), synonyms[0].2);
            Entry {
                name: key.to_string(),
                value,
                source,
                // Only the topic defaults change at runtime (Kafka's DynamicLogConfig).
                read_only: !is_dynamic(key),
                config_type: topic_def
                    .map_or_else(|| guess_type(key, &synonyms[0].1), |d| kind_type(d.kind)),
                synonyms,
            }
        })
        .collect())
}

/// The broker's value of `key` when it was set (file, environment, command line) rather than
/// left at its default.
fn static_value(config: &Config, key: &str) -> Option<String> {
    let value = config.raw.get(key)?;
    (config.explicit.contains_key(key) || builtin_default(key) != Some(value.as_str()))
        .then(|| value.clone())
}

/// Rivulet's built-in value of a broker setting, if it has one.
fn builtin_default(key: &str) -> Option<&'static str> {
    BROKER_DEFAULTS
        .iter()
        .find(|(k, _)| *k == key)
        .map(|(_, v)| *v)
}

fn kind_type(kind: Kind) -> i8 {
    match kind {
        Kind::Long(_) => TYPE_LONG,
        Kind::Int(_) => TYPE_INT,
        Kind::Ratio => TYPE_DOUBLE,
        Kind::Bool => TYPE_BOOLEAN,
        Kind::Enum(_) => TYPE_STRING,
        Kind::CleanupPolicy | Kind::Text => TYPE_LIST,
    }
}

/// Kafka's type of a broker-only setting: times are longs, other numbers ints.
fn guess_type(key: &str, value: &str) -> i8 {
    if value == "true" || value == "false" {
        TYPE_BOOLEAN
    } else if value.parse::<i64>().is_ok() {
        if key.ends_with(".ms") || key.ends_with(".minutes") {
            TYPE_LONG
        } else {
            TYPE_INT
        }
    } else {
        TYPE_STRING
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_topic_config_kind_has_a_type() {
        for def in TOPIC_CONFIGS {
            assert!(kind_type(def.kind) > 0, "{}", def.name);
        }
        assert_eq!(guess_type("num.partitions", "1"), TYPE_INT);
        assert_eq!(
            guess_type("group.initial.rebalance.delay.ms", "3000"),
            TYPE_LONG
        );
        assert_eq!(
            guess_type("auto.create.topics.enable", "true"),
            TYPE_BOOLEAN
        );
        assert_eq!(guess_type("listeners", "PLAINTEXT://x:1"), TYPE_STRING);
    }

    #[test]
    fn broker_values_are_static_only_when_set() {
        let mut explicit = std::collections::BTreeMap::new();
        explicit.insert("num.partitions".to_string(), "3".to_string());
        let config = Config::from_settings(explicit).unwrap();
        assert_eq!(
            static_value(&config, "num.partitions"),
            Some("3".to_string())
        );
        assert_eq!(static_value(&config, "log.retention.ms"), None);
        let none = DynamicBrokerConfigs::default();
        let entries = broker_entries(&config, &none, &config.node_id.to_string()).unwrap();
        let parts = entries.iter().find(|e| e.name == "num.partitions").unwrap();
        assert_eq!(
            (parts.value.as_str(), parts.source),
            ("3", SOURCE_STATIC_BROKER)
        );
        assert_eq!(parts.synonyms.len(), 2);
        let retention = entries
            .iter()
            .find(|e| e.name == "log.retention.ms")
            .unwrap();
        assert_eq!(
            (retention.value.as_str(), retention.source),
            ("604800000", SOURCE_DEFAULT)
        );
        assert!(broker_entries(&config, &none, "").unwrap().is_empty());
        assert_eq!(
            broker_entries(&config, &none, "77").err().map(|e| e.0),
            Some(ResponseError::InvalidRequest)
        );
    }
}
