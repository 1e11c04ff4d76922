//! The settings of a client metrics subscription (`CLIENT_METRICS` config resources, KIP-714,
//! Kafka's `ClientMetricsConfigs`): which metrics (`metrics`, name prefixes, `*` for all), how
//! often (`interval.ms`) and from which clients (`match`, `key=regex` entries) a client pushing
//! telemetry is asked for. Stored and described as Kafka does; this broker does not yet serve
//! GetTelemetrySubscriptions / PushTelemetry, which will read them here.
//!
//! Validation of the whole resulting set, as Kafka's controller does: an unknown name or an
//! interval outside [100, 3600000] is INVALID_REQUEST; a value that does not parse or a `match`
//! entry that is not `key=regex` over the six client selectors is INVALID_CONFIG. The list
//! settings are not lists to AlterConfigs' APPEND and SUBTRACT (Kafka's controller only splits
//! topic and broker lists), so those operations are INVALID_CONFIG.

use std::collections::BTreeMap;

use super::{parse_int, Def, ResourceConfigError, ValueType};

/// `interval.ms` bounds.
const MIN_INTERVAL_MS: i32 = 100;
const MAX_INTERVAL_MS: i32 = 3_600_000;

/// The client selectors a `match` entry may use.
const MATCH_KEYS: [&str; 6] = [
    "client_instance_id",
    "client_id",
    "client_software_name",
    "client_software_version",
    "client_source_address",
    "client_source_port",
];

/// Every client metrics setting, with its default.
pub const DEFS: &[Def] = &[
    Def {
        name: "interval.ms",
        value_type: ValueType::Int,
        default: |_| "300000".to_string(),
    },
    Def {
        name: "match",
        value_type: ValueType::List,
        default: |_| String::new(),
    },
    Def {
        name: "metrics",
        value_type: ValueType::List,
        default: |_| String::new(),
    },
];

/// Validates a subscription's settings (see the module docs).
pub fn validate(settings: &BTreeMap<String, String>) -> Result<(), ResourceConfigError> {
    for (key, value) in settings {
        match key.as_str() {
            "interval.ms" => {
                let v = parse_int(key, value)?;
                if !(MIN_INTERVAL_MS..=MAX_INTERVAL_MS).contains(&v) {
                    return Err(ResourceConfigError::InvalidRequest(format!(
                        "Invalid value {v} for interval.ms, interval must be between {MIN_INTERVAL_MS} and {MAX_INTERVAL_MS} (1 hour)"
                    )));
                }
            }
            "metrics" => {}
            "match" => {
                for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                    let parts: Vec<&str> = entry.split('=').map(str::trim).collect();
                    let ok = parts.len() == 2
                        && MATCH_KEYS.contains(&parts[0])
                        && regex::Regex::new(parts[1]).is_ok();
                    if !ok {
                        return Err(ResourceConfigError::InvalidConfig(format!(
                            "Illegal client matching pattern: {entry}"
                        )));
                    }
                }
            }
            other => {
                return Err(ResourceConfigError::InvalidRequest(format!(
                    "Unknown client metrics configuration: {other}"
                )))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(pairs: &[(&str, &str)]) -> Result<(), ResourceConfigError> {
        validate(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn kafka_rules_and_codes() {
        assert!(check(&[
            ("metrics", "org.apache.kafka.producer.,*"),
            ("interval.ms", "100"),
            (
                "match",
                "client_id=app-.*, client_software_name=apache-kafka-java"
            )
        ])
        .is_ok());
        assert!(matches!(
            check(&[("interval.ms", "99")]),
            Err(ResourceConfigError::InvalidRequest(_))
        ));
        assert!(matches!(
            check(&[("interval.ms", "3600001")]),
            Err(ResourceConfigError::InvalidRequest(_))
        ));
        assert!(matches!(
            check(&[("interval.ms", "soon")]),
            Err(ResourceConfigError::InvalidConfig(_))
        ));
        assert!(matches!(
            check(&[("colour", "red")]),
            Err(ResourceConfigError::InvalidRequest(_))
        ));
        for bad in ["client_id", "host=.*", "client_id=(", "client_id=a=b"] {
            assert!(
                matches!(
                    check(&[("match", bad)]),
                    Err(ResourceConfigError::InvalidConfig(_))
                ),
                "{bad}"
            );
        }
    }
}
