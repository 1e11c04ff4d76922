//! The settings of a group (`GROUP` config resources, Kafka's `GroupConfig`): per-group
//! overrides of the broker's `group.consumer.*` and `group.share.*` defaults. Kafka applies them
//! to consumer-protocol (KIP-848) and share groups only; classic groups take their session
//! timeout from JoinGroup. This broker has no such groups yet, so the values are stored,
//! validated and described exactly, and the coordinators of those group types read them here.
//!
//! Validation, as Kafka's `GroupConfig.validate`: a value must parse as its type and pass its
//! static minimum, lie within the broker's bounds (`group.consumer.min/max.session.timeout.ms`,
//! ...), and each session timeout must exceed its heartbeat interval (overrides merged over the
//! broker defaults); an unknown name is refused. Every refusal is INVALID_CONFIG.

use std::collections::BTreeMap;

use super::{parse_int, Def, ResourceConfigError, ValueType};
use crate::config::Config;

fn broker(config: &Config, key: &str) -> String {
    config.raw.get(key).cloned().unwrap_or_default()
}

/// Every group setting Kafka 4.0 defines, with its broker default.
pub const DEFS: &[Def] = &[
    Def {
        name: "consumer.heartbeat.interval.ms",
        value_type: ValueType::Int,
        default: |c| broker(c, "group.consumer.heartbeat.interval.ms"),
    },
    Def {
        name: "consumer.session.timeout.ms",
        value_type: ValueType::Int,
        default: |c| broker(c, "group.consumer.session.timeout.ms"),
    },
    Def {
        name: "share.auto.offset.reset",
        value_type: ValueType::String,
        default: |_| "latest".to_string(),
    },
    Def {
        name: "share.heartbeat.interval.ms",
        value_type: ValueType::Int,
        default: |c| broker(c, "group.share.heartbeat.interval.ms"),
    },
    Def {
        name: "share.record.lock.duration.ms",
        value_type: ValueType::Int,
        default: |c| broker(c, "group.share.record.lock.duration.ms"),
    },
    Def {
        name: "share.session.timeout.ms",
        value_type: ValueType::Int,
        default: |c| broker(c, "group.share.session.timeout.ms"),
    },
];

/// The broker bounds of each INT setting: (static minimum, min key, max key).
fn bounds(key: &str) -> Option<(i32, &'static str, &'static str)> {
    Some(match key {
        "consumer.heartbeat.interval.ms" => (
            1,
            "group.consumer.min.heartbeat.interval.ms",
            "group.consumer.max.heartbeat.interval.ms",
        ),
        "consumer.session.timeout.ms" => (
            1,
            "group.consumer.min.session.timeout.ms",
            "group.consumer.max.session.timeout.ms",
        ),
        "share.heartbeat.interval.ms" => (
            1,
            "group.share.min.heartbeat.interval.ms",
            "group.share.max.heartbeat.interval.ms",
        ),
        "share.session.timeout.ms" => (
            1,
            "group.share.min.session.timeout.ms",
            "group.share.max.session.timeout.ms",
        ),
        "share.record.lock.duration.ms" => (
            1000,
            "group.share.min.record.lock.duration.ms",
            "group.share.max.record.lock.duration.ms",
        ),
        _ => return None,
    })
}

fn invalid(message: String) -> ResourceConfigError {
    ResourceConfigError::InvalidConfig(message)
}

/// Validates a group's settings under the broker `config` (see the module docs).
pub fn validate(
    settings: &BTreeMap<String, String>,
    config: &Config,
) -> Result<(), ResourceConfigError> {
    for (key, value) in settings {
        if !DEFS.iter().any(|d| d.name == key) {
            return Err(invalid(format!("Unknown group config name: {key}")));
        }
        if key == "share.auto.offset.reset" {
            if !["latest", "earliest"].contains(&value.trim()) {
                return Err(invalid(format!(
                    "Invalid value {value} for configuration {key}: String must be one of: latest, earliest"
                )));
            }
            continue;
        }
        let v = parse_int(key, value)?;
        if let Some((minimum, min_key, max_key)) = bounds(key) {
            if v < minimum {
                return Err(invalid(format!(
                    "Invalid value {v} for configuration {key}: Value must be at least {minimum}"
                )));
            }
            let lo = parse_int(min_key, &broker(config, min_key))?;
            let hi = parse_int(max_key, &broker(config, max_key))?;
            if v < lo {
                return Err(invalid(format!(
                    "{key} must be greater than or equal to {min_key}"
                )));
            }
            if v > hi {
                return Err(invalid(format!(
                    "{key} must be less than or equal to {max_key}"
                )));
            }
        }
    }
    let effective = |key: &str| -> Result<i32, ResourceConfigError> {
        match settings.get(key) {
            Some(v) => parse_int(key, v),
            None => {
                let def = DEFS.iter().find(|d| d.name == key);
                parse_int(key, &def.map(|d| (d.default)(config)).unwrap_or_default())
            }
        }
    };
    for (heartbeat, session) in [
        (
            "consumer.heartbeat.interval.ms",
            "consumer.session.timeout.ms",
        ),
        ("share.heartbeat.interval.ms", "share.session.timeout.ms"),
    ] {
        if effective(heartbeat)? >= effective(session)? {
            return Err(invalid(format!("{heartbeat} must be less than {session}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn kafka_bounds_and_cross_checks() {
        let c = Config::default();
        assert!(validate(&settings(&[("consumer.session.timeout.ms", "50000")]), &c).is_ok());
        assert!(validate(&settings(&[("share.auto.offset.reset", "earliest")]), &c).is_ok());
        for bad in [
            ("consumer.session.timeout.ms", "44999"),
            ("consumer.session.timeout.ms", "60001"),
            ("consumer.session.timeout.ms", "soon"),
            ("consumer.heartbeat.interval.ms", "4999"),
            ("share.record.lock.duration.ms", "999"),
            ("share.record.lock.duration.ms", "60001"),
            ("share.auto.offset.reset", "none"),
            ("consumer.unknown", "1"),
        ] {
            assert!(validate(&settings(&[bad]), &c).is_err(), "{bad:?} accepted");
        }
        let mut wide = std::collections::BTreeMap::new();
        wide.insert(
            "group.consumer.max.heartbeat.interval.ms".to_string(),
            "60000".to_string(),
        );
        let c = Config::from_settings(wide).unwrap();
        assert!(
            validate(
                &settings(&[("consumer.heartbeat.interval.ms", "45000")]),
                &c
            )
            .is_err(),
            "a heartbeat interval must stay below the session timeout"
        );
    }
}
