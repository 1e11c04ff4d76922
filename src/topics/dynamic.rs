//! Dynamic broker configs (Kafka's `DynamicBrokerConfig`, the log-default part): broker
//! settings changed at runtime by AlterConfigs / IncrementalAlterConfigs, for this broker (its
//! id) or as the cluster-wide default (`""`), layered over the static settings.
//!
//! Only the settings that are topic defaults (`log.retention.ms`, `log.segment.bytes`,
//! `log.cleanup.policy`, `message.max.bytes`, ...: every broker synonym of a topic setting) can
//! change at runtime, as Kafka's `DynamicLogConfig`; the others are read-only. Precedence, as
//! Kafka's: a topic override, then the per-broker value, then the cluster default, then the
//! static setting, then the built-in default.
//!
//! File: `dynamic-broker-configs.json` in the data directory,
//! `{"v":1,"broker":{key:value,...},"default":{key:value,...}}`, written atomically before a
//! change is answered; absent until the first change.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::config::{validate, TOPIC_CONFIGS};
use crate::config::Config;
use crate::log::write_atomically;

const FILE: &str = "dynamic-broker-configs.json";
const VERSION: u8 = 1;

/// The dynamic layers of the broker's settings.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DynamicBrokerConfigs {
    /// Format version.
    #[serde(default)]
    pub v: u8,
    /// Set for this broker (resource name = its node id).
    #[serde(default)]
    pub broker: BTreeMap<String, String>,
    /// Set as the cluster-wide default (resource name `""`).
    #[serde(default)]
    pub default: BTreeMap<String, String>,
}

/// Which layer a dynamic value comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layer {
    /// This broker (DYNAMIC_BROKER_CONFIG).
    Broker,
    /// The cluster-wide default (DYNAMIC_DEFAULT_BROKER_CONFIG).
    Default,
}

/// Whether a broker setting can change at runtime: the broker synonyms of topic settings.
pub fn is_dynamic(key: &str) -> bool {
    TOPIC_CONFIGS.iter().any(|d| d.broker_key == Some(key))
}

/// Checks a dynamic value as its topic setting is checked; the error is the reason.
pub fn validate_dynamic(key: &str, value: &str) -> Result<(), String> {
    let def = TOPIC_CONFIGS
        .iter()
        .find(|d| d.broker_key == Some(key))
        .ok_or_else(|| format!("Cannot update these configs dynamically: [{key}]"))?;
    validate(def.name, value)
}

impl DynamicBrokerConfigs {
    /// Reads the file (nothing when absent).
    pub fn load(dir: &Path) -> std::io::Result<DynamicBrokerConfigs> {
        match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", dir.join(FILE).display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Ok(DynamicBrokerConfigs::default())
            }
            Err(e) => Err(e),
        }
    }

    /// Writes the file atomically (blocking).
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        let mut copy = self.clone();
        copy.v = VERSION;
        let bytes = serde_json::to_vec_pretty(&copy)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
        write_atomically(dir, FILE, &bytes)
    }

    /// The layer's settings.
    pub fn layer(&self, layer: Layer) -> &BTreeMap<String, String> {
        match layer {
            Layer::Broker => &self.broker,
            Layer::Default => &self.default,
        }
    }

    /// The layer's settings, to change.
    pub fn layer_mut(&mut self, layer: Layer) -> &mut BTreeMap<String, String> {
        match layer {
            Layer::Broker => &mut self.broker,
            Layer::Default => &mut self.default,
        }
    }

    /// The static settings with the dynamic ones on top (per broker over the default): what
    /// topic defaults are resolved against.
    pub fn apply(&self, base: &Config) -> Config {
        let mut config = base.clone();
        for (k, v) in self.default.iter().chain(self.broker.iter()) {
            config.raw.insert(k.clone(), v.clone());
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layers_round_trip_and_apply_in_kafkas_order() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            DynamicBrokerConfigs::load(dir.path()).unwrap(),
            DynamicBrokerConfigs::default()
        );
        let mut d = DynamicBrokerConfigs::default();
        d.default.insert("log.retention.ms".into(), "1000".into());
        d.default
            .insert("log.segment.bytes".into(), "2000000".into());
        d.broker.insert("log.retention.ms".into(), "2000".into());
        d.save(dir.path()).unwrap();
        let back = DynamicBrokerConfigs::load(dir.path()).unwrap();
        assert_eq!(
            (back.broker.clone(), back.default.clone()),
            (d.broker.clone(), d.default.clone())
        );
        let config = back.apply(&Config::default());
        assert_eq!(
            config.raw["log.retention.ms"], "2000",
            "per broker over the default"
        );
        assert_eq!(config.raw["log.segment.bytes"], "2000000");
        assert!(is_dynamic("log.retention.ms") && !is_dynamic("num.partitions"));
        assert!(validate_dynamic("log.retention.ms", "soon").is_err());
        assert!(validate_dynamic("listeners", "PLAINTEXT://:1").is_err());
    }
}
