//! Settings of the config resources that are neither topics nor the broker: consumer and share
//! groups (`GROUP`, type 32, see [`group`]) and client metrics subscriptions (`CLIENT_METRICS`,
//! type 16, KIP-714, see [`client_metrics`]). Kafka keeps them as config records in its metadata
//! log; a single node keeps them in one file.
//!
//! File: `resource-configs.json` in the data directory,
//! `{"v":1,"group":{name:{key:value}},"client_metrics":{name:{key:value}}}`, replaced atomically
//! (`write_atomically`) before an alteration is answered; absent until the first one. A resource
//! whose last setting is deleted disappears from the file.
//!
//! Invariant: every stored value passed its definition's validation against the broker config
//! it was set under.

pub mod client_metrics;
pub mod group;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::log::write_atomically;

const FILE: &str = "resource-configs.json";
const VERSION: u8 = 1;

/// Which kind of resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A consumer or share group (`GROUP`).
    Group,
    /// A client metrics subscription (`CLIENT_METRICS`).
    ClientMetrics,
}

/// The type of a setting, as DescribeConfigs reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueType {
    /// A 32-bit integer.
    Int,
    /// A string.
    String,
    /// A comma-separated list.
    List,
}

/// One setting of a resource kind.
#[derive(Debug, Clone, Copy)]
pub struct Def {
    /// Kafka's name.
    pub name: &'static str,
    /// Its type.
    pub value_type: ValueType,
    /// Its default under a broker config.
    pub default: fn(&Config) -> String,
}

/// Why an alteration was refused (the handler maps it to INVALID_CONFIG).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResourceConfigError {
    /// A name no definition has, or a value its definition refuses.
    #[error("{0}")]
    InvalidConfig(String),
    /// A request Kafka refuses outright (INVALID_REQUEST).
    #[error("{0}")]
    InvalidRequest(String),
    /// The file could not be written.
    #[error("persisting resource configs: {0}")]
    Io(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Stored {
    #[serde(default)]
    v: u8,
    #[serde(default)]
    group: BTreeMap<String, BTreeMap<String, String>>,
    #[serde(default)]
    client_metrics: BTreeMap<String, BTreeMap<String, String>>,
}

impl Stored {
    fn of(&self, kind: Kind) -> &BTreeMap<String, BTreeMap<String, String>> {
        match kind {
            Kind::Group => &self.group,
            Kind::ClientMetrics => &self.client_metrics,
        }
    }

    fn of_mut(&mut self, kind: Kind) -> &mut BTreeMap<String, BTreeMap<String, String>> {
        match kind {
            Kind::Group => &mut self.group,
            Kind::ClientMetrics => &mut self.client_metrics,
        }
    }
}

/// The settings of every group and client metrics subscription.
#[derive(Debug)]
pub struct ResourceConfigs {
    dir: PathBuf,
    stored: RwLock<Stored>,
    /// Serializes alterations (read, change, write, publish).
    write: Mutex<()>,
}

impl ResourceConfigs {
    /// Loads the file in `dir` (empty if absent). Blocking.
    pub fn open(dir: &Path) -> std::io::Result<ResourceConfigs> {
        let stored = match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(e),
        };
        Ok(ResourceConfigs {
            dir: dir.to_path_buf(),
            stored: RwLock::new(stored),
            write: Mutex::new(()),
        })
    }

    /// The settings set on resource `name` of `kind`.
    pub fn get(&self, kind: Kind, name: &str) -> BTreeMap<String, String> {
        self.stored
            .read()
            .of(kind)
            .get(name)
            .cloned()
            .unwrap_or_default()
    }

    /// The names of the resources of `kind` with any setting.
    pub fn names(&self, kind: Kind) -> Vec<String> {
        self.stored.read().of(kind).keys().cloned().collect()
    }

    /// Replaces the settings of resource `name` with `settings` after validating them as
    /// `validate` does (unless `validate_only`, persisted before this returns). Blocking.
    pub fn alter(
        &self,
        kind: Kind,
        name: &str,
        settings: BTreeMap<String, String>,
        validate_only: bool,
        config: &Config,
    ) -> Result<(), ResourceConfigError> {
        match kind {
            Kind::Group => group::validate(&settings, config)?,
            Kind::ClientMetrics => client_metrics::validate(&settings)?,
        }
        if validate_only {
            return Ok(());
        }
        let _write = self.write.lock();
        let mut next = self.stored.read().clone();
        next.v = VERSION;
        if settings.is_empty() {
            next.of_mut(kind).remove(name);
        } else {
            next.of_mut(kind).insert(name.to_string(), settings);
        }
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| ResourceConfigError::Io(e.to_string()))?;
        write_atomically(&self.dir, FILE, &bytes)
            .map_err(|e| ResourceConfigError::Io(e.to_string()))?;
        *self.stored.write() = next;
        Ok(())
    }
}

/// The definitions of `kind`.
pub fn defs(kind: Kind) -> &'static [Def] {
    match kind {
        Kind::Group => group::DEFS,
        Kind::ClientMetrics => client_metrics::DEFS,
    }
}

/// The definition of `name` in `kind`.
pub fn lookup(kind: Kind, name: &str) -> Option<&'static Def> {
    defs(kind).iter().find(|d| d.name == name)
}

/// Parses an INT setting as Kafka's `ConfigDef` does; the error is Kafka's message.
fn parse_int(key: &str, value: &str) -> Result<i32, ResourceConfigError> {
    value.trim().parse::<i32>().map_err(|_| {
        ResourceConfigError::InvalidConfig(format!(
            "Invalid value {value} for configuration {key}: Not a number of type INT"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alterations_persist_and_an_emptied_resource_disappears() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::default();
        let store = ResourceConfigs::open(dir.path()).unwrap();
        let mut s = BTreeMap::new();
        s.insert(
            "consumer.session.timeout.ms".to_string(),
            "50000".to_string(),
        );
        store
            .alter(Kind::Group, "g", s.clone(), true, &config)
            .unwrap();
        assert!(
            store.get(Kind::Group, "g").is_empty(),
            "validate_only stores nothing"
        );
        store
            .alter(Kind::Group, "g", s.clone(), false, &config)
            .unwrap();
        let reopened = ResourceConfigs::open(dir.path()).unwrap();
        assert_eq!(reopened.get(Kind::Group, "g"), s);
        assert_eq!(reopened.names(Kind::Group), vec!["g".to_string()]);
        reopened
            .alter(Kind::Group, "g", BTreeMap::new(), false, &config)
            .unwrap();
        assert!(ResourceConfigs::open(dir.path())
            .unwrap()
            .names(Kind::Group)
            .is_empty());
    }
}
