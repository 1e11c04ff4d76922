//! Finalized feature levels (KIP-584): what the cluster has switched on, reported by
//! ApiVersions and changed by UpdateFeatures (Kafka's `FeatureControlManager`, for one node).
//!
//! The features this broker really has: `transaction.version` 0-2 (2: the KIP-890 transaction
//! protocol). Its level starts from the broker setting `transaction.version` (Kafka sets it when
//! the storage is formatted); once UpdateFeatures changed anything, the file below is the truth.
//!
//! File: `features.json` in the data directory, `{"v":1,"epoch":N,"finalized":{name:level}}`,
//! replaced atomically before an update is answered. `epoch` (ApiVersions'
//! `finalized_features_epoch`) grows with every change, so clients, which only take finalized
//! features from an epoch newer than the last they saw, notice it. A level of 0 is not listed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::log::write_atomically;

const FILE: &str = "features.json";
const VERSION: u8 = 1;

/// A feature this broker supports, with its range of levels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Supported {
    /// Kafka's name.
    pub name: &'static str,
    /// Lowest level.
    pub min: i16,
    /// Highest level.
    pub max: i16,
}

/// Every feature this broker has.
pub const SUPPORTED: &[Supported] = &[Supported {
    name: "transaction.version",
    min: 0,
    max: 2,
}];

/// How an update may move a level (UpdateFeatures v1's `upgrade_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpgradeType {
    /// Only up (1).
    Upgrade,
    /// Down, keeping metadata (2).
    SafeDowngrade,
    /// Down, possibly losing metadata (3).
    UnsafeDowngrade,
}

impl UpgradeType {
    /// The wire code's type, None for an unknown code.
    pub fn from_code(code: i8) -> Option<UpgradeType> {
        match code {
            1 => Some(UpgradeType::Upgrade),
            2 => Some(UpgradeType::SafeDowngrade),
            3 => Some(UpgradeType::UnsafeDowngrade),
            _ => None,
        }
    }
}

/// Why an update was refused: Kafka's detail, for INVALID_UPDATE_VERSION.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    /// A feature's update is invalid; nothing was changed.
    #[error("The update failed for all features since the following feature had an error: {0}")]
    InvalidUpdate(String),
    /// The file could not be written.
    #[error("persisting features: {0}")]
    Io(String),
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct State {
    #[serde(default)]
    v: u8,
    epoch: i64,
    finalized: BTreeMap<String, i16>,
}

/// The finalized features.
#[derive(Debug)]
pub struct Features {
    dir: PathBuf,
    state: RwLock<State>,
    write: Mutex<()>,
}

impl Features {
    /// Loads the file in `dir`, or starts from `bootstrap` (epoch 1) when there is none.
    /// Blocking.
    pub fn open(dir: &Path, bootstrap: &[(&str, i16)]) -> std::io::Result<Features> {
        let state = match std::fs::read(dir.join(FILE)) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(std::io::Error::other)?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State {
                v: VERSION,
                epoch: 1,
                finalized: bootstrap
                    .iter()
                    .filter(|(_, level)| *level > 0)
                    .map(|(n, l)| (n.to_string(), *l))
                    .collect(),
            },
            Err(e) => return Err(e),
        };
        Ok(Features {
            dir: dir.to_path_buf(),
            state: RwLock::new(state),
            write: Mutex::new(()),
        })
    }

    /// (epoch, finalized levels above 0 by name).
    pub fn finalized(&self) -> (i64, Vec<(String, i16)>) {
        let state = self.state.read();
        let levels = state
            .finalized
            .iter()
            .filter(|(_, l)| **l > 0)
            .map(|(n, l)| (n.clone(), *l))
            .collect();
        (state.epoch, levels)
    }

    /// The finalized level of `name` (0 when not finalized).
    pub fn level(&self, name: &str) -> i16 {
        self.state.read().finalized.get(name).copied().unwrap_or(0)
    }

    /// Applies `updates` (name, level, type) all or nothing, as Kafka's controller checks them
    /// (`node_id` names the "local controller" in its messages); the last update of a name
    /// wins. Unless `validate_only`, persisted before this returns. Blocking.
    pub fn update(
        &self,
        updates: &[(String, i16, Option<UpgradeType>)],
        validate_only: bool,
        node_id: i32,
    ) -> Result<(), FeatureError> {
        let _write = self.write.lock();
        let mut next = self.state.read().clone();
        let mut wanted: BTreeMap<&str, (i16, Option<UpgradeType>)> = BTreeMap::new();
        for (name, level, kind) in updates {
            wanted.insert(name.as_str(), (*level, *kind));
        }
        for (name, (level, kind)) in &wanted {
            let fail = |detail: &str| {
                Err(FeatureError::InvalidUpdate(format!(
                    "Invalid update version {level} for feature {name}. {detail}"
                )))
            };
            let Some(kind) = kind else {
                return fail("The controller does not support the given upgrade type.");
            };
            if *level < 0 {
                return fail("A feature version cannot be less than 0.");
            }
            let supported = SUPPORTED.iter().find(|s| s.name == *name);
            match supported {
                None if *level > 0 => {
                    return fail(&format!(
                        "Local controller {node_id} does not support this feature."
                    ))
                }
                None => return fail(&format!("Feature {name} not found.")),
                Some(s) if *level < s.min || *level > s.max => {
                    return fail(&format!(
                        "Local controller {node_id} only supports versions {}-{}",
                        s.min, s.max
                    ))
                }
                Some(_) => {}
            }
            let current = next.finalized.get(*name).copied().unwrap_or(0);
            if *level < current && *kind == UpgradeType::Upgrade {
                return fail("Can't downgrade the version of this feature without setting the upgrade type to either safe or unsafe downgrade.");
            }
            if *level > current && *kind != UpgradeType::Upgrade {
                return fail("Can't downgrade to a newer version.");
            }
            if *level == 0 {
                next.finalized.remove(*name);
            } else {
                next.finalized.insert(name.to_string(), *level);
            }
        }
        if validate_only || wanted.is_empty() {
            return Ok(());
        }
        next.v = VERSION;
        next.epoch += 1;
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| FeatureError::Io(e.to_string()))?;
        write_atomically(&self.dir, FILE, &bytes).map_err(|e| FeatureError::Io(e.to_string()))?;
        *self.state.write() = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TV: &str = "transaction.version";

    fn update(f: &Features, level: i16, kind: Option<UpgradeType>) -> Result<(), FeatureError> {
        f.update(&[(TV.to_string(), level, kind)], false, 1)
    }

    #[test]
    fn kafka_rules_all_or_nothing_and_durable() {
        let dir = tempfile::tempdir().unwrap();
        let f = Features::open(dir.path(), &[(TV, 2)]).unwrap();
        assert_eq!(f.finalized(), (1, vec![(TV.to_string(), 2)]));
        let down = Some(UpgradeType::SafeDowngrade);
        let up = Some(UpgradeType::Upgrade);
        assert!(
            update(&f, 1, up).is_err(),
            "a downgrade needs a downgrade type"
        );
        assert!(update(&f, 3, up).is_err(), "outside 0-2");
        assert!(update(&f, -1, up).is_err());
        assert!(update(&f, 1, None).is_err(), "unknown upgrade type");
        let both = [
            (TV.to_string(), 1, down),
            ("metadata.version".to_string(), 25, up),
        ];
        assert!(f.update(&both, false, 1).is_err());
        assert_eq!(f.level(TV), 2, "nothing changed");
        f.update(&[(TV.to_string(), 1, down)], true, 1).unwrap();
        assert_eq!(f.finalized().0, 1, "validate_only");
        update(&f, 1, down).unwrap();
        assert!(update(&f, 2, down).is_err(), "up with a downgrade type");
        update(&f, 0, Some(UpgradeType::UnsafeDowngrade)).unwrap();
        assert_eq!(f.finalized(), (3, vec![]));
        assert!(f
            .update(&[("nope".to_string(), 0, down)], false, 1)
            .is_err());
        update(&f, 2, up).unwrap();
        let reopened = Features::open(dir.path(), &[(TV, 1)]).unwrap();
        assert_eq!(
            reopened.finalized(),
            (4, vec![(TV.to_string(), 2)]),
            "the file wins over bootstrap"
        );
    }
}
