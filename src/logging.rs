//! The broker's log levels, changeable at runtime (Kafka's `BROKER_LOGGER` config resources,
//! served by `handlers::configs` and `handlers::alter_configs`).
//!
//! Kafka's loggers are log4j's; ours are tracing targets, the broker's modules
//! (`rivulet::cleaner`, `rivulet::handlers`, ...), plus `root`, the level of everything else.
//! A logger without a level of its own inherits its nearest ancestor's (`rivulet::log` from
//! `rivulet`, `rivulet` from `root`), as log4j loggers do. Levels are Kafka's names (FATAL,
//! ERROR, WARN, INFO, DEBUG, TRACE); tracing has no FATAL, so FATAL filters as ERROR.
//!
//! The levels start from `RUST_LOG` (default `info`): a bare level is root's, `target=level`
//! a logger's; any other directive (span or field filters) is kept as given. A change rebuilds
//! the tracing filter through the reload layer [`init`] installed; like Kafka's, changes live in
//! memory only and a restart starts from `RUST_LOG` again.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use parking_lot::Mutex;
use tracing_subscriber::prelude::*;
use tracing_subscriber::{reload, EnvFilter, Registry};

/// The levels Kafka accepts, in the order its error message lists them.
pub const VALID_LEVELS: [&str; 6] = ["DEBUG", "ERROR", "FATAL", "INFO", "TRACE", "WARN"];

/// The root logger's name.
pub const ROOT: &str = "root";

/// The broker's loggers besides `root`: its crate and every module.
pub const LOGGERS: [&str; 19] = [
    "rivulet",
    "rivulet::broker",
    "rivulet::cleaner",
    "rivulet::clock",
    "rivulet::config",
    "rivulet::connection",
    "rivulet::coordinator",
    "rivulet::group",
    "rivulet::handlers",
    "rivulet::log",
    "rivulet::logging",
    "rivulet::metrics",
    "rivulet::partition",
    "rivulet::protocol",
    "rivulet::resource_configs",
    "rivulet::server",
    "rivulet::tasks",
    "rivulet::topics",
    "rivulet::txn",
];

/// Why a level change was refused, with Kafka's code in the handler.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LoggerError {
    /// An unknown logger or level (INVALID_CONFIG).
    #[error("{0}")]
    InvalidConfig(String),
    /// Removing root's level (INVALID_REQUEST).
    #[error("{0}")]
    InvalidRequest(String),
}

#[derive(Debug, Clone)]
struct State {
    root: String,
    levels: BTreeMap<String, String>,
    /// Directives from RUST_LOG that are not plain `target=level` ones.
    extra: Vec<String>,
}

impl State {
    fn from_directives(spec: &str) -> State {
        let mut state = State {
            root: "INFO".to_string(),
            levels: BTreeMap::new(),
            extra: Vec::new(),
        };
        for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
            match d.split_once('=') {
                None if kafka_level(d).is_some() => state.root = kafka_level(d).unwrap_or_default(),
                Some((target, level))
                    if !target.contains(['[', '{']) && kafka_level(level).is_some() =>
                {
                    let logger = if target == ROOT { ROOT } else { target };
                    let level = kafka_level(level).unwrap_or_default();
                    if logger == ROOT {
                        state.root = level;
                    } else {
                        state.levels.insert(logger.to_string(), level);
                    }
                }
                _ => state.extra.push(d.to_string()),
            }
        }
        state
    }

    fn directives(&self) -> String {
        let mut out = vec![tracing_level(&self.root).to_string()];
        out.extend(
            self.levels
                .iter()
                .map(|(t, l)| format!("{t}={}", tracing_level(l))),
        );
        out.extend(self.extra.iter().cloned());
        out.join(",")
    }

    fn effective(&self, logger: &str) -> String {
        if logger == ROOT {
            return self.root.clone();
        }
        let mut name = logger;
        loop {
            if let Some(level) = self.levels.get(name) {
                return level.clone();
            }
            match name.rfind("::") {
                Some(i) => name = &name[..i],
                None => return self.root.clone(),
            }
        }
    }
}

/// A tracing or Kafka level name as Kafka's upper-case name.
fn kafka_level(level: &str) -> Option<String> {
    let upper = level.trim().to_ascii_uppercase();
    match upper.as_str() {
        "TRACE" | "DEBUG" | "INFO" | "WARN" | "ERROR" | "FATAL" | "OFF" => Some(upper),
        _ => None,
    }
}

fn tracing_level(level: &str) -> &'static str {
    match level {
        "TRACE" => "trace",
        "DEBUG" => "debug",
        "INFO" => "info",
        "WARN" => "warn",
        "OFF" => "off",
        _ => "error",
    }
}

/// The broker's log levels.
#[derive(Debug)]
pub struct LogLevels {
    state: Mutex<State>,
    handle: Option<reload::Handle<EnvFilter, Registry>>,
}

static LEVELS: OnceLock<LogLevels> = OnceLock::new();

/// Installs the global tracing subscriber (formatted output, levels from `RUST_LOG`, default
/// `info`) with a reloadable filter. Call once, first thing in `main`.
pub fn init() {
    let spec = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".to_string());
    let state = State::from_directives(&spec);
    let filter = EnvFilter::try_new(&spec).unwrap_or_else(|_| EnvFilter::new("info"));
    let (layer, handle) = reload::Layer::new(filter);
    tracing_subscriber::registry()
        .with(layer)
        .with(tracing_subscriber::fmt::layer())
        .init();
    let _ = LEVELS.set(LogLevels {
        state: Mutex::new(state),
        handle: Some(handle),
    });
}

/// The broker's log levels: those [`init`] installed, or (in tests and embedded brokers) a set
/// that starts at INFO and changes nothing but itself.
pub fn levels() -> &'static LogLevels {
    LEVELS.get_or_init(|| LogLevels {
        state: Mutex::new(State::from_directives("info")),
        handle: None,
    })
}

impl LogLevels {
    /// Every logger with its effective level, root first.
    pub fn describe(&self) -> Vec<(String, String)> {
        let state = self.state.lock();
        let mut names: Vec<String> = LOGGERS.iter().map(|l| l.to_string()).collect();
        names.extend(state.levels.keys().cloned());
        names.sort();
        names.dedup();
        let mut out = vec![(ROOT.to_string(), state.root.clone())];
        out.extend(names.into_iter().map(|n| {
            let level = state.effective(&n);
            (n, level)
        }));
        out
    }

    /// Checks a change (`Some(level)` sets, `None` removes the logger's own level) as Kafka's
    /// `RuntimeLoggerManager` does.
    pub fn check(&self, logger: &str, level: Option<&str>) -> Result<(), LoggerError> {
        let known = logger == ROOT
            || LOGGERS.contains(&logger)
            || self.state.lock().levels.contains_key(logger);
        if !known {
            return Err(LoggerError::InvalidConfig(format!(
                "Logger {logger} does not exist!"
            )));
        }
        match level {
            Some(level) if !VALID_LEVELS.contains(&level) => {
                Err(LoggerError::InvalidConfig(format!(
                    "Cannot set the log level of {logger} to {level} as it is not a supported log level. Valid log levels are {}",
                    VALID_LEVELS.join(", ")
                )))
            }
            None if logger == ROOT => Err(LoggerError::InvalidRequest(
                "Removing the log level of the root logger is not allowed".to_string(),
            )),
            _ => Ok(()),
        }
    }

    /// Applies checked changes and reloads the filter.
    pub fn apply(&self, changes: &[(String, Option<String>)]) {
        let mut state = self.state.lock();
        for (logger, level) in changes {
            match (logger.as_str(), level) {
                (ROOT, Some(level)) => state.root = level.clone(),
                (_, Some(level)) => {
                    state.levels.insert(logger.clone(), level.clone());
                }
                (_, None) => {
                    state.levels.remove(logger);
                }
            }
        }
        if let Some(handle) = &self.handle {
            let directives = state.directives();
            match EnvFilter::try_new(&directives) {
                Ok(filter) => {
                    if let Err(e) = handle.reload(filter) {
                        tracing::error!(error = %e, "could not reload the log filter");
                    }
                }
                Err(e) => tracing::error!(%directives, error = %e, "invalid log filter"),
            }
        }
        tracing::info!(?changes, "log levels changed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_inherit_and_rebuild_the_filter() {
        let mut s = State::from_directives("warn,rivulet::log=debug,h2[{id=1}]=trace");
        assert_eq!(s.root, "WARN");
        assert_eq!(s.effective("rivulet::log"), "DEBUG");
        assert_eq!(s.effective("rivulet::cleaner"), "WARN");
        s.levels.insert("rivulet".into(), "TRACE".into());
        assert_eq!(s.effective("rivulet::cleaner"), "TRACE");
        assert_eq!(
            s.directives(),
            "warn,rivulet=trace,rivulet::log=debug,h2[{id=1}]=trace"
        );
        assert!(EnvFilter::try_new(s.directives()).is_ok());
    }

    #[test]
    fn kafka_checks() {
        let l = LogLevels {
            state: Mutex::new(State::from_directives("info")),
            handle: None,
        };
        assert!(l.check("rivulet::cleaner", Some("DEBUG")).is_ok());
        assert!(matches!(
            l.check("rivulet::cleaner", Some("debug")),
            Err(LoggerError::InvalidConfig(_))
        ));
        assert!(matches!(
            l.check("kafka.server", Some("DEBUG")),
            Err(LoggerError::InvalidConfig(_))
        ));
        assert!(matches!(
            l.check(ROOT, None),
            Err(LoggerError::InvalidRequest(_))
        ));
        l.apply(&[("rivulet::cleaner".into(), Some("FATAL".into()))]);
        assert_eq!(
            l.describe()
                .into_iter()
                .find(|(n, _)| n == "rivulet::cleaner")
                .map(|e| e.1),
            Some("FATAL".to_string())
        );
        l.apply(&[("rivulet::cleaner".into(), None)]);
        assert_eq!(l.describe()[0], (ROOT.to_string(), "INFO".to_string()));
    }
}
