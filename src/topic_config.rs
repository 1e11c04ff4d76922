//! Topic-level settings: Kafka's names, the broker setting each falls back to, defaults, validation.
//!
//! A topic stores only its overrides; the effective value of anything else is the broker's
//! setting of the synonym key (e.g. `retention.ms` falls back to `log.retention.ms`).

use crate::config::Config;

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

/// (topic key, broker key) pairs, for validating broker-level defaults.
pub const BROKER_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("compression.type", "compression.type"),
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

#[cfg(test)]
mod tests {
    use super::*;

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
