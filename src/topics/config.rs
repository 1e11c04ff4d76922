//! Topic-level settings: Kafka's names, the broker setting each falls back to, defaults,
//! validation, and [`TopicConfig`], the typed form every partition reads (Kafka's `LogConfig`).
//!
//! A topic stores only its overrides; the effective value of anything else is the broker's
//! setting of the synonym key (e.g. `retention.ms` falls back to `log.retention.ms`). Overrides
//! are validated and resolved once, when the topic is created (later: altered) or loaded, into a
//! [`TopicConfig`] that the topic and its partitions share by `Arc`; no request parses a config
//! string again.

use std::collections::BTreeMap;

use crate::config::Config;
use crate::log::LogConfig;

/// What a value must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A 64-bit integer, at least the given minimum.
    Long(i64),
    /// A 32-bit integer, at least the given minimum.
    Int(i64),
    /// A floating point number in [0, 1].
    Ratio,
    /// `true` or `false`.
    Bool,
    /// One of a fixed set of words.
    Enum(&'static [&'static str]),
    /// A comma-separated subset of `delete`, `compact`.
    CleanupPolicy,
    /// Free text (replica lists and such).
    Text,
}

/// One topic setting: name, broker synonym (if any), default, kind.
pub struct TopicConfigDef {
    /// The topic-level name.
    pub name: &'static str,
    /// The broker setting whose value is the default, when there is one.
    pub broker_key: Option<&'static str>,
    /// Kafka's default.
    pub default: &'static str,
    /// Validation.
    pub kind: Kind,
}

const fn def(
    name: &'static str,
    broker_key: Option<&'static str>,
    default: &'static str,
    kind: Kind,
) -> TopicConfigDef {
    TopicConfigDef {
        name,
        broker_key,
        default,
        kind,
    }
}

const LONG_MAX: &str = "9223372036854775807";

/// Every topic-level setting of Kafka 4.x.
pub const TOPIC_CONFIGS: &[TopicConfigDef] = &[
    def(
        "cleanup.policy",
        Some("log.cleanup.policy"),
        "delete",
        Kind::CleanupPolicy,
    ),
    def(
        "compression.type",
        Some("compression.type"),
        "producer",
        Kind::Enum(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"]),
    ),
    def(
        "compression.gzip.level",
        Some("compression.gzip.level"),
        "-1",
        Kind::Int(-1),
    ),
    def(
        "compression.lz4.level",
        Some("compression.lz4.level"),
        "9",
        Kind::Int(1),
    ),
    def(
        "compression.zstd.level",
        Some("compression.zstd.level"),
        "3",
        Kind::Int(-131072),
    ),
    def(
        "delete.retention.ms",
        Some("log.cleaner.delete.retention.ms"),
        "86400000",
        Kind::Long(0),
    ),
    def(
        "file.delete.delay.ms",
        Some("log.segment.delete.delay.ms"),
        "60000",
        Kind::Long(0),
    ),
    def(
        "flush.messages",
        Some("log.flush.interval.messages"),
        LONG_MAX,
        Kind::Long(1),
    ),
    def(
        "flush.ms",
        Some("log.flush.interval.ms"),
        LONG_MAX,
        Kind::Long(0),
    ),
    def(
        "follower.replication.throttled.replicas",
        None,
        "",
        Kind::Text,
    ),
    def(
        "index.interval.bytes",
        Some("log.index.interval.bytes"),
        "4096",
        Kind::Int(0),
    ),
    def(
        "leader.replication.throttled.replicas",
        None,
        "",
        Kind::Text,
    ),
    def(
        "local.retention.bytes",
        Some("log.local.retention.bytes"),
        "-2",
        Kind::Long(-2),
    ),
    def(
        "local.retention.ms",
        Some("log.local.retention.ms"),
        "-2",
        Kind::Long(-2),
    ),
    def(
        "max.compaction.lag.ms",
        Some("log.cleaner.max.compaction.lag.ms"),
        LONG_MAX,
        Kind::Long(1),
    ),
    def(
        "max.message.bytes",
        Some("message.max.bytes"),
        "1048588",
        Kind::Int(0),
    ),
    def(
        "message.timestamp.after.max.ms",
        Some("log.message.timestamp.after.max.ms"),
        "3600000",
        Kind::Long(0),
    ),
    def(
        "message.timestamp.before.max.ms",
        Some("log.message.timestamp.before.max.ms"),
        LONG_MAX,
        Kind::Long(0),
    ),
    def(
        "message.timestamp.type",
        Some("log.message.timestamp.type"),
        "CreateTime",
        Kind::Enum(&["CreateTime", "LogAppendTime"]),
    ),
    def(
        "min.cleanable.dirty.ratio",
        Some("log.cleaner.min.cleanable.ratio"),
        "0.5",
        Kind::Ratio,
    ),
    def(
        "min.compaction.lag.ms",
        Some("log.cleaner.min.compaction.lag.ms"),
        "0",
        Kind::Long(0),
    ),
    def(
        "min.insync.replicas",
        Some("min.insync.replicas"),
        "1",
        Kind::Int(1),
    ),
    def("preallocate", Some("log.preallocate"), "false", Kind::Bool),
    def("remote.log.copy.disable", None, "false", Kind::Bool),
    def("remote.log.delete.on.disable", None, "false", Kind::Bool),
    def("remote.storage.enable", None, "false", Kind::Bool),
    def(
        "retention.bytes",
        Some("log.retention.bytes"),
        "-1",
        Kind::Long(i64::MIN),
    ),
    def(
        "retention.ms",
        Some("log.retention.ms"),
        "604800000",
        Kind::Long(-1),
    ),
    def(
        "segment.bytes",
        Some("log.segment.bytes"),
        "1073741824",
        Kind::Int(14),
    ),
    def(
        "segment.index.bytes",
        Some("log.index.size.max.bytes"),
        "10485760",
        Kind::Int(4),
    ),
    def(
        "segment.jitter.ms",
        Some("log.roll.jitter.ms"),
        "0",
        Kind::Long(0),
    ),
    def(
        "segment.ms",
        Some("log.roll.ms"),
        "604800000",
        Kind::Long(1),
    ),
    def(
        "unclean.leader.election.enable",
        Some("unclean.leader.election.enable"),
        "false",
        Kind::Bool,
    ),
];

/// The definition of a topic setting by name.
pub fn lookup(name: &str) -> Option<&'static TopicConfigDef> {
    TOPIC_CONFIGS.iter().find(|d| d.name == name)
}

/// Whether `key` is a broker setting that only serves as a topic default.
pub fn is_topic_default_key(key: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|d| d.broker_key == Some(key))
}

/// The broker-wide effective value of a topic setting.
pub fn broker_default(config: &Config, topic_key: &str) -> Option<String> {
    let d = lookup(topic_key)?;
    d.broker_key
        .and_then(|bk| config.raw.get(bk).cloned())
        .or_else(|| Some(d.default.to_string()))
}

/// Checks one value; the error is the reason, for INVALID_CONFIG messages.
pub fn validate(name: &str, value: &str) -> Result<(), String> {
    let d = lookup(name).ok_or_else(|| format!("Unknown topic config name: {name}"))?;
    let v = value.trim();
    let bad = || format!("Invalid value {value} for configuration {name}");
    match d.kind {
        Kind::Long(min) => match v.parse::<i64>() {
            Ok(n) if n >= min => Ok(()),
            _ => Err(bad()),
        },
        Kind::Int(min) => match v.parse::<i32>() {
            Ok(n) if n as i64 >= min => Ok(()),
            _ => Err(bad()),
        },
        Kind::Ratio => match v.parse::<f64>() {
            Ok(n) if (0.0..=1.0).contains(&n) => Ok(()),
            _ => Err(bad()),
        },
        Kind::Bool => match v.to_ascii_lowercase().as_str() {
            "true" | "false" => Ok(()),
            _ => Err(bad()),
        },
        Kind::Enum(words) => {
            if words.contains(&v) {
                Ok(())
            } else {
                Err(bad())
            }
        }
        Kind::CleanupPolicy => {
            let ok = !v.is_empty()
                && v.split(',')
                    .all(|p| matches!(p.trim(), "delete" | "compact"));
            if ok {
                Ok(())
            } else {
                Err(bad())
            }
        }
        Kind::Text => Ok(()),
    }
}

/// `cleanup.policy`: what happens to old segments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    /// `delete`: retention removes old segments; DeleteRecords is allowed.
    pub delete: bool,
    /// `compact`: the cleaner keeps the last record per key; every record needs a key.
    pub compact: bool,
}

/// `message.timestamp.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps are kept (within the `message.timestamp.*.max.ms` bounds).
    CreateTime,
    /// Batches are stamped with the broker's append time.
    LogAppendTime,
}

/// The compaction settings (used by the cleaner).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionConfig {
    /// `min.cleanable.dirty.ratio`.
    pub min_cleanable_dirty_ratio: f64,
    /// `delete.retention.ms`: how long tombstones stay after cleaning.
    pub delete_retention_ms: i64,
    /// `min.compaction.lag.ms`.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`.
    pub max_compaction_lag_ms: i64,
}

/// A topic's settings, validated and typed (Kafka's `LogConfig`): its overrides resolved over
/// the broker's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct TopicConfig {
    overrides: BTreeMap<String, String>,
    /// `cleanup.policy`.
    pub cleanup_policy: CleanupPolicy,
    /// `retention.ms` (-1: forever).
    pub retention_ms: i64,
    /// `retention.bytes` (negative: no limit).
    pub retention_bytes: i64,
    /// `max.message.bytes`: the largest batch, compressed as sent.
    pub max_message_bytes: usize,
    /// `message.timestamp.type`.
    pub timestamp_type: TimestampType,
    /// `message.timestamp.before.max.ms` (CreateTime topics).
    pub message_timestamp_before_max_ms: i64,
    /// `message.timestamp.after.max.ms` (CreateTime topics).
    pub message_timestamp_after_max_ms: i64,
    /// `segment.bytes`, `segment.ms`, `index.interval.bytes`, `segment.index.bytes`, as the log
    /// applies them.
    pub segment: LogConfig,
    /// The compaction settings.
    pub compaction: CompactionConfig,
    /// `min.insync.replicas`.
    pub min_insync_replicas: i32,
}

impl TopicConfig {
    /// Validates every override (the error is the INVALID_CONFIG message) and resolves the
    /// effective settings over the broker's defaults.
    pub fn new(
        overrides: BTreeMap<String, String>,
        broker: &Config,
    ) -> Result<TopicConfig, String> {
        for (k, v) in &overrides {
            validate(k, v)?;
        }
        let value = |key: &str| -> String {
            overrides
                .get(key)
                .cloned()
                .or_else(|| broker_default(broker, key))
                .unwrap_or_default()
        };
        // Every value is valid (overrides just now, broker defaults in Config::from_settings),
        // so a parse failure can only mean a definition without a default: use Kafka's.
        let long = |key: &str| -> i64 {
            value(key).trim().parse().unwrap_or_else(|_| {
                lookup(key)
                    .and_then(|d| d.default.parse().ok())
                    .unwrap_or_default()
            })
        };
        let ratio = |key: &str| -> f64 { value(key).trim().parse().unwrap_or(0.5) };
        let policy = value("cleanup.policy");
        let policies: Vec<&str> = policy.split(',').map(str::trim).collect();
        Ok(TopicConfig {
            cleanup_policy: CleanupPolicy {
                delete: policies.contains(&"delete"),
                compact: policies.contains(&"compact"),
            },
            retention_ms: long("retention.ms"),
            retention_bytes: long("retention.bytes"),
            max_message_bytes: long("max.message.bytes").max(0) as usize,
            timestamp_type: if value("message.timestamp.type") == "LogAppendTime" {
                TimestampType::LogAppendTime
            } else {
                TimestampType::CreateTime
            },
            message_timestamp_before_max_ms: long("message.timestamp.before.max.ms"),
            message_timestamp_after_max_ms: long("message.timestamp.after.max.ms"),
            segment: LogConfig {
                segment_bytes: long("segment.bytes").max(1) as u64,
                segment_ms: long("segment.ms"),
                index_interval_bytes: long("index.interval.bytes").clamp(0, u32::MAX as i64) as u32,
                segment_index_bytes: long("segment.index.bytes").clamp(8, u32::MAX as i64) as u32,
            },
            compaction: CompactionConfig {
                min_cleanable_dirty_ratio: ratio("min.cleanable.dirty.ratio"),
                delete_retention_ms: long("delete.retention.ms"),
                min_compaction_lag_ms: long("min.compaction.lag.ms"),
                max_compaction_lag_ms: long("max.compaction.lag.ms"),
            },
            min_insync_replicas: long("min.insync.replicas").clamp(1, i32::MAX as i64) as i32,
            overrides,
        })
    }

    /// The broker's defaults alone (an auto-created topic, the group log).
    pub fn defaults(broker: &Config) -> TopicConfig {
        // Broker defaults were validated when the broker's config was built.
        TopicConfig::new(BTreeMap::new(), broker).unwrap_or_else(|reason| {
            tracing::error!(reason, "broker topic defaults invalid; using Kafka's");
            TopicConfig::kafka_defaults()
        })
    }

    /// Kafka's defaults, independent of any broker setting.
    fn kafka_defaults() -> TopicConfig {
        TopicConfig {
            overrides: BTreeMap::new(),
            cleanup_policy: CleanupPolicy {
                delete: true,
                compact: false,
            },
            retention_ms: 604_800_000,
            retention_bytes: -1,
            max_message_bytes: 1_048_588,
            timestamp_type: TimestampType::CreateTime,
            message_timestamp_before_max_ms: i64::MAX,
            message_timestamp_after_max_ms: 3_600_000,
            segment: LogConfig::default(),
            compaction: CompactionConfig {
                min_cleanable_dirty_ratio: 0.5,
                delete_retention_ms: 86_400_000,
                min_compaction_lag_ms: 0,
                max_compaction_lag_ms: i64::MAX,
            },
            min_insync_replicas: 1,
        }
    }

    /// The settings set on the topic itself (Kafka's DYNAMIC_TOPIC_CONFIG), by name.
    pub fn overrides(&self) -> &BTreeMap<String, String> {
        &self.overrides
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_config_resolves_overrides_over_broker_defaults() {
        let mut explicit = BTreeMap::new();
        explicit.insert("log.retention.ms".to_string(), "1000".to_string());
        explicit.insert("log.cleanup.policy".to_string(), "compact".to_string());
        let broker = Config::from_settings(explicit).unwrap();
        let d = TopicConfig::defaults(&broker);
        assert_eq!(d.retention_ms, 1000);
        assert_eq!(
            d.cleanup_policy,
            CleanupPolicy {
                delete: false,
                compact: true
            }
        );
        assert_eq!(d.max_message_bytes, 1_048_588);
        assert_eq!(d.timestamp_type, TimestampType::CreateTime);
        assert_eq!(d.segment, LogConfig::default());
        assert_eq!(d.compaction.min_cleanable_dirty_ratio, 0.5);
        assert_eq!(d.message_timestamp_before_max_ms, i64::MAX);

        let mut o = BTreeMap::new();
        o.insert("cleanup.policy".to_string(), "compact, delete".to_string());
        o.insert(
            "message.timestamp.type".to_string(),
            "LogAppendTime".to_string(),
        );
        o.insert("segment.bytes".to_string(), "2048".to_string());
        o.insert("max.message.bytes".to_string(), "100".to_string());
        o.insert("min.insync.replicas".to_string(), "2".to_string());
        let c = TopicConfig::new(o.clone(), &broker).unwrap();
        assert!(c.cleanup_policy.delete && c.cleanup_policy.compact);
        assert_eq!(c.timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(c.segment.segment_bytes, 2048);
        assert_eq!(c.max_message_bytes, 100);
        assert_eq!(c.min_insync_replicas, 2);
        assert_eq!(c.retention_ms, 1000);
        assert_eq!(c.overrides(), &o);

        let mut bad = BTreeMap::new();
        bad.insert("retention.ms".to_string(), "soon".to_string());
        assert!(TopicConfig::new(bad, &broker).is_err());
        let mut unknown = BTreeMap::new();
        unknown.insert("no.such".to_string(), "1".to_string());
        assert!(TopicConfig::new(unknown, &broker)
            .unwrap_err()
            .contains("Unknown topic config"));
        assert_eq!(
            TopicConfig::kafka_defaults(),
            TopicConfig::defaults(&Config::default())
        );
    }

    #[test]
    fn validates_kinds() {
        assert!(validate("retention.ms", "-1").is_ok());
        assert!(validate("retention.ms", "-5").is_err());
        assert!(validate("cleanup.policy", "compact,delete").is_ok());
        assert!(validate("cleanup.policy", "keep").is_err());
        assert!(validate("message.timestamp.type", "LogAppendTime").is_ok());
        assert!(validate("no.such.config", "1").is_err());
        assert!(validate("segment.bytes", "1").is_err());
    }

    #[test]
    fn broker_defaults_follow_synonyms() {
        let c = Config::default();
        assert_eq!(broker_default(&c, "segment.bytes").unwrap(), "1073741824");
        assert_eq!(broker_default(&c, "max.message.bytes").unwrap(), "1048588");
        assert_eq!(broker_default(&c, "preallocate").unwrap(), "false");
    }
}
