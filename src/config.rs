//! Broker settings under Kafka's names and defaults.
//!
//! Settings are layered, later layers winning: built-in defaults, an optional TOML file,
//! environment variables (`RIVULET_` + the key upper-cased with dots as underscores, e.g.
//! `RIVULET_LOG_DIRS`), then command-line flags and `--override key=value`. Every layer speaks
//! Kafka's key names, so a `server.properties` habit carries over unchanged.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::cleaner::CleanerConfig;
use crate::group::GroupConfig;
use crate::topics::config as topic_config;
use crate::txn::TxnConfig;

/// A configuration that cannot be used, with the key and the reason.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A value that does not parse or is out of range.
    #[error("invalid value {value:?} for {key}: {reason}")]
    Invalid {
        /// The setting's Kafka name.
        key: String,
        /// The value as given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A key that no layer knows; refused so a typo does not silently fall back to a default.
    #[error("unknown broker setting {0}")]
    Unknown(String),
    /// The TOML file could not be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file's path.
        path: String,
        /// What went wrong.
        reason: String,
    },
}

/// Kafka broker settings Rivulet knows, with their defaults (as strings, the way Kafka lists them).
pub const BROKER_DEFAULTS: &[(&str, &str)] = &[
    ("listeners", "PLAINTEXT://127.0.0.1:9092"),
    ("advertised.listeners", "PLAINTEXT://localhost:9092"),
    (
        "listener.security.protocol.map",
        "PLAINTEXT:PLAINTEXT,SSL:SSL,SASL_PLAINTEXT:SASL_PLAINTEXT,SASL_SSL:SASL_SSL",
    ),
    ("node.id", "1"),
    ("log.dirs", "./rivulet-data"),
    ("num.partitions", "1"),
    ("default.replication.factor", "1"),
    ("auto.create.topics.enable", "true"),
    ("message.max.bytes", "1048588"),
    ("socket.request.max.bytes", "104857600"),
    ("log.segment.bytes", "1073741824"),
    ("log.roll.ms", "604800000"),
    ("log.index.interval.bytes", "4096"),
    ("log.index.size.max.bytes", "10485760"),
    ("log.retention.ms", "604800000"),
    ("log.retention.bytes", "-1"),
    ("log.retention.check.interval.ms", "300000"),
    ("log.cleanup.policy", "delete"),
    ("log.cleaner.enable", "true"),
    ("log.cleaner.threads", "1"),
    ("log.cleaner.dedupe.buffer.size", "134217728"),
    ("log.cleaner.io.buffer.load.factor", "0.9"),
    ("log.cleaner.io.buffer.size", "524288"),
    (
        "log.cleaner.io.max.bytes.per.second",
        "1.7976931348623157E308",
    ),
    ("log.cleaner.backoff.ms", "15000"),
    ("log.message.timestamp.type", "CreateTime"),
    ("compression.type", "producer"),
    ("max.connections", "10000"),
    ("delete.topic.enable", "true"),
    ("log.flush.offset.checkpoint.interval.ms", "60000"),
    ("producer.id.expiration.ms", "86400000"),
    ("producer.id.expiration.check.interval.ms", "600000"),
    ("group.initial.rebalance.delay.ms", "3000"),
    ("group.min.session.timeout.ms", "6000"),
    ("group.max.session.timeout.ms", "1800000"),
    ("group.max.size", "2147483647"),
    ("group.consumer.session.timeout.ms", "45000"),
    ("group.consumer.min.session.timeout.ms", "45000"),
    ("group.consumer.max.session.timeout.ms", "60000"),
    ("group.consumer.heartbeat.interval.ms", "5000"),
    ("group.consumer.min.heartbeat.interval.ms", "5000"),
    ("group.consumer.max.heartbeat.interval.ms", "15000"),
    ("group.share.session.timeout.ms", "45000"),
    ("group.share.min.session.timeout.ms", "45000"),
    ("group.share.max.session.timeout.ms", "60000"),
    ("group.share.heartbeat.interval.ms", "5000"),
    ("group.share.min.heartbeat.interval.ms", "5000"),
    ("group.share.max.heartbeat.interval.ms", "15000"),
    ("group.share.record.lock.duration.ms", "30000"),
    ("group.share.min.record.lock.duration.ms", "15000"),
    ("group.share.max.record.lock.duration.ms", "60000"),
    ("offsets.retention.minutes", "10080"),
    ("offsets.retention.check.interval.ms", "600000"),
    ("offset.metadata.max.bytes", "4096"),
    ("offsets.topic.segment.bytes", "104857600"),
    ("offsets.topic.num.partitions", "50"),
    ("transaction.max.timeout.ms", "900000"),
    ("transactional.id.expiration.ms", "604800000"),
    (
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "10000",
    ),
    (
        "transaction.remove.expired.transaction.cleanup.interval.ms",
        "3600000",
    ),
    ("transaction.state.log.num.partitions", "50"),
    ("transaction.state.log.segment.bytes", "104857600"),
    ("transaction.partition.verification.enable", "true"),
    ("transaction.version", "2"),
];

/// How a listener's connections are secured (Kafka's `SecurityProtocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecurityProtocol {
    /// No TLS, no SASL: every connection is the ANONYMOUS principal.
    Plaintext,
}

impl SecurityProtocol {
    /// Kafka's name of the protocol.
    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
        }
    }
}

/// One listener: its name, how it is secured, where it binds and what it tells clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerConfig {
    /// The listener name (`PLAINTEXT`, or a custom name mapped in
    /// `listener.security.protocol.map`), upper-cased as Kafka normalises it.
    pub name: String,
    /// Its security protocol.
    pub security_protocol: SecurityProtocol,
    /// The address to bind (port 0: any free port).
    pub bind: SocketAddr,
    /// Host clients are told to connect to for this listener.
    pub advertised_host: String,
    /// Port clients are told to connect to; 0 means "the port actually bound".
    pub advertised_port: u16,
}

/// The typed, validated broker configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// The listeners (`listeners`, `advertised.listeners`, `listener.security.protocol.map`);
    /// never empty, names unique.
    pub listeners: Vec<ListenerConfig>,
    /// This broker's id (`node.id`).
    pub node_id: i32,
    /// The log directories (`log.dirs`, comma-separated), in configuration order, never empty
    /// and without duplicates. The first is also the metadata directory (Kafka's
    /// `metadata.log.dir` default): see [`Config::metadata_log_dir`].
    pub log_dirs: Vec<PathBuf>,
    /// Default partition count for auto-created topics and CreateTopics with -1.
    pub num_partitions: i32,
    /// Metadata requests may create missing topics (`auto.create.topics.enable`).
    pub auto_create_topics: bool,
    /// Replication factor of CreateTopics with -1 (`default.replication.factor`).
    pub default_replication_factor: i32,
    /// DeleteTopics allowed (`delete.topic.enable`).
    pub delete_topic_enable: bool,
    /// Largest record batch accepted (`message.max.bytes`).
    pub message_max_bytes: usize,
    /// Largest request frame; bigger frames close the connection (`socket.request.max.bytes`).
    pub socket_request_max_bytes: usize,
    /// Maximum simultaneous client connections (`max.connections`).
    pub max_connections: usize,
    /// How often every partition is fsynced and its recovery point advanced.
    pub flush_checkpoint_interval_ms: u64,
    /// How often segments are checked against `retention.ms` / `retention.bytes`.
    pub retention_check_interval_ms: u64,
    /// Producer state is forgotten after this long without a batch (`producer.id.expiration.ms`).
    pub producer_id_expiration_ms: i64,
    /// How often expired producers are looked for.
    pub producer_id_expiration_check_interval_ms: u64,
    /// The group coordinator's settings (`group.*`, `offsets.*`, `offset.metadata.max.bytes`).
    pub group: GroupConfig,
    /// The transaction coordinator's settings (`transaction.*`, `transactional.id.*`).
    pub txn: TxnConfig,
    /// The log cleaner's settings (`log.cleaner.*`).
    pub cleaner: CleanerConfig,
    /// Every setting as resolved, by Kafka name; the source of topic-config defaults.
    pub raw: BTreeMap<String, String>,
    /// Settings that came from a file, the environment or the command line rather than defaults.
    pub explicit: BTreeMap<String, String>,
}

impl Default for Config {
    fn default() -> Self {
        Config::from_settings(BTreeMap::new()).unwrap_or_else(|e| panic!("built-in defaults: {e}"))
    }
}

impl Config {
    /// Builds a config from explicit settings layered over the defaults.
    pub fn from_settings(explicit: BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let mut raw: BTreeMap<String, String> = BROKER_DEFAULTS
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        for (k, v) in &explicit {
            let key = normalize_alias(k, v);
            if !raw.contains_key(&key.0) && !topic_config::is_topic_default_key(&key.0) {
                return Err(ConfigError::Unknown(k.clone()));
            }
            raw.insert(key.0, key.1);
        }
        let listeners = parse_listeners(&raw)?;
        let config = Config {
            listeners,
            node_id: parse_num(&raw, "node.id", 0, i32::MAX as i64)? as i32,
            log_dirs: parse_log_dirs(&raw["log.dirs"])?,
            num_partitions: parse_num(&raw, "num.partitions", 1, 1_000_000)? as i32,
            auto_create_topics: parse_bool(&raw, "auto.create.topics.enable")?,
            default_replication_factor: parse_num(
                &raw,
                "default.replication.factor",
                i32::MIN as i64,
                i32::MAX as i64,
            )? as i32,
            delete_topic_enable: parse_bool(&raw, "delete.topic.enable")?,
            message_max_bytes: parse_num(&raw, "message.max.bytes", 0, i32::MAX as i64)? as usize,
            socket_request_max_bytes: parse_num(
                &raw,
                "socket.request.max.bytes",
                1,
                i32::MAX as i64,
            )? as usize,
            max_connections: parse_num(&raw, "max.connections", 1, i32::MAX as i64)? as usize,
            flush_checkpoint_interval_ms: parse_num(
                &raw,
                "log.flush.offset.checkpoint.interval.ms",
                1,
                i32::MAX as i64,
            )? as u64,
            retention_check_interval_ms: parse_num(
                &raw,
                "log.retention.check.interval.ms",
                1,
                i64::MAX,
            )? as u64,
            producer_id_expiration_ms: parse_num(&raw, "producer.id.expiration.ms", 1, i64::MAX)?,
            producer_id_expiration_check_interval_ms: parse_num(
                &raw,
                "producer.id.expiration.check.interval.ms",
                1,
                i32::MAX as i64,
            )? as u64,
            group: group_config(&raw)?,
            txn: txn_config(&raw)?,
            cleaner: cleaner_config(&raw)?,
            raw,
            explicit,
        };
        for key in [
            "log.segment.bytes",
            "log.roll.ms",
            "log.index.interval.bytes",
            "log.index.size.max.bytes",
            "log.retention.ms",
            "log.retention.bytes",
        ] {
            parse_num(&config.raw, key, i64::MIN, i64::MAX)?;
        }
        for (key, _) in BROKER_DEFAULTS
            .iter()
            .filter(|(k, _)| k.starts_with("group.consumer.") || k.starts_with("group.share."))
        {
            parse_num(&config.raw, key, 1, i32::MAX as i64)?;
        }
        // Every broker-level topic default must be a valid topic value, so resolving a topic's
        // config can only fail on the topic's own overrides.
        for def in topic_config::TOPIC_CONFIGS {
            if let Some(v) = def.broker_key.and_then(|k| config.raw.get(k)) {
                topic_config::validate(def.name, v)
                    .map_err(|reason| invalid(def.broker_key.unwrap_or(def.name), v, &reason))?;
            }
        }
        Ok(config)
    }

    /// The directory of the broker's own files (topics, identity, dynamic settings, the group
    /// and transaction logs): the first of `log.dirs`, as Kafka's `metadata.log.dir` defaults.
    pub fn metadata_log_dir(&self) -> &Path {
        &self.log_dirs[0]
    }

    /// The broker-wide default for a topic-level setting, by its topic-level name.
    pub fn topic_default(&self, topic_key: &str) -> Option<String> {
        topic_config::broker_default(self, topic_key)
    }
}

/// The group coordinator settings, with Kafka's bounds (`GroupCoordinatorConfig`).
fn group_config(raw: &BTreeMap<String, String>) -> Result<GroupConfig, ConfigError> {
    let int = i32::MAX as i64;
    let min_session = parse_num(raw, "group.min.session.timeout.ms", 0, int)? as i32;
    let max_session = parse_num(raw, "group.max.session.timeout.ms", 0, int)? as i32;
    if max_session < min_session {
        return Err(invalid(
            "group.max.session.timeout.ms",
            &raw["group.max.session.timeout.ms"],
            "must be at least group.min.session.timeout.ms",
        ));
    }
    Ok(GroupConfig {
        initial_rebalance_delay_ms: parse_num(raw, "group.initial.rebalance.delay.ms", 0, int)?,
        min_session_timeout_ms: min_session,
        max_session_timeout_ms: max_session,
        max_size: parse_num(raw, "group.max.size", 1, int)? as usize,
        offsets_retention_ms: parse_num(raw, "offsets.retention.minutes", 1, int)? * 60_000,
        offsets_retention_check_interval_ms: parse_num(
            raw,
            "offsets.retention.check.interval.ms",
            1,
            i64::MAX,
        )?,
        offset_metadata_max_bytes: parse_num(raw, "offset.metadata.max.bytes", 0, int)? as usize,
        // The group log is a partition log: its segment.bytes rule (at least 14) applies.
        segment_bytes: parse_num(raw, "offsets.topic.segment.bytes", 14, int)? as u64,
        num_partitions: parse_num(raw, "offsets.topic.num.partitions", 1, int)? as i32,
        ..GroupConfig::default()
    })
}

/// The log cleaner settings, with Kafka's bounds (`CleanerConfig`).
fn cleaner_config(raw: &BTreeMap<String, String>) -> Result<CleanerConfig, ConfigError> {
    let float = |key: &str, min: f64| -> Result<f64, ConfigError> {
        match raw[key].trim().parse::<f64>() {
            Ok(v) if v >= min && !v.is_nan() => Ok(v),
            _ => Err(invalid(
                key,
                &raw[key],
                &format!("must be a number of at least {min}"),
            )),
        }
    };
    let load_factor = float("log.cleaner.io.buffer.load.factor", 0.0)?;
    if load_factor <= 0.0 || load_factor > 1.0 {
        return Err(invalid(
            "log.cleaner.io.buffer.load.factor",
            &raw["log.cleaner.io.buffer.load.factor"],
            "must be in (0, 1]",
        ));
    }
    parse_num(raw, "log.cleaner.io.buffer.size", 0, i32::MAX as i64)?;
    Ok(CleanerConfig {
        enable: parse_bool(raw, "log.cleaner.enable")?,
        threads: parse_num(raw, "log.cleaner.threads", 0, 64)? as usize,
        dedupe_buffer_size: parse_num(raw, "log.cleaner.dedupe.buffer.size", 0, i64::MAX)? as u64,
        load_factor,
        io_max_bytes_per_second: float("log.cleaner.io.max.bytes.per.second", 0.0)?,
        backoff_ms: parse_num(raw, "log.cleaner.backoff.ms", 0, i64::MAX)? as u64,
    })
}

/// The transaction coordinator settings, with Kafka's bounds (`TransactionStateManagerConfig`,
/// `TransactionLogConfig`); `transaction.version` is the finalized level of the feature.
fn txn_config(raw: &BTreeMap<String, String>) -> Result<TxnConfig, ConfigError> {
    let int = i32::MAX as i64;
    let verification = match raw["transaction.partition.verification.enable"].as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(invalid(
                "transaction.partition.verification.enable",
                other,
                "must be true or false",
            ))
        }
    };
    Ok(TxnConfig {
        max_timeout_ms: parse_num(raw, "transaction.max.timeout.ms", 1, int)?,
        id_expiration_ms: parse_num(raw, "transactional.id.expiration.ms", 1, int)?,
        abort_interval_ms: parse_num(
            raw,
            "transaction.abort.timed.out.transaction.cleanup.interval.ms",
            1,
            int,
        )?,
        remove_interval_ms: parse_num(
            raw,
            "transaction.remove.expired.transaction.cleanup.interval.ms",
            1,
            int,
        )?,
        num_partitions: parse_num(raw, "transaction.state.log.num.partitions", 1, int)? as i32,
        segment_bytes: parse_num(raw, "transaction.state.log.segment.bytes", 14, int)? as u64,
        transaction_version: parse_num(raw, "transaction.version", 0, 2)? as i16,
        verification,
    })
}

/// Kafka has several spellings for some settings (`log.roll.hours`, `log.dir`); fold them to one.
fn normalize_alias(key: &str, value: &str) -> (String, String) {
    let hours = |v: &str| v.parse::<i64>().map(|h| (h * 3_600_000).to_string());
    let minutes = |v: &str| v.parse::<i64>().map(|m| (m * 60_000).to_string());
    match key {
        "log.dir" => ("log.dirs".into(), value.into()),
        "broker.id" => ("node.id".into(), value.into()),
        "log.roll.hours" => ("log.roll.ms".into(), hours(value).unwrap_or(value.into())),
        "log.retention.hours" => (
            "log.retention.ms".into(),
            hours(value).unwrap_or(value.into()),
        ),
        "log.retention.minutes" => (
            "log.retention.ms".into(),
            minutes(value).unwrap_or(value.into()),
        ),
        _ => (key.into(), value.into()),
    }
}

/// `log.dirs`: comma-separated directories, blanks trimmed; none empty, none named twice (by
/// absolute path, as Kafka refuses a duplicate log directory).
fn parse_log_dirs(value: &str) -> Result<Vec<PathBuf>, ConfigError> {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    for part in value.split(',') {
        let part = part.trim();
        if part.is_empty() {
            return Err(invalid("log.dirs", value, "an entry is empty"));
        }
        let absolute = std::path::absolute(part)
            .map_err(|e| invalid("log.dirs", value, &format!("{part}: {e}")))?;
        if !seen.insert(absolute) {
            return Err(invalid(
                "log.dirs",
                value,
                &format!("duplicate log directory {part}"),
            ));
        }
        dirs.push(PathBuf::from(part));
    }
    Ok(dirs)
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.into(),
        value: value.into(),
        reason: reason.into(),
    }
}

fn parse_num(
    raw: &BTreeMap<String, String>,
    key: &str,
    min: i64,
    max: i64,
) -> Result<i64, ConfigError> {
    let v = raw.get(key).map(String::as_str).unwrap_or("");
    let n: i64 = v
        .trim()
        .parse()
        .map_err(|_| invalid(key, v, "not an integer"))?;
    if n < min || n > max {
        return Err(invalid(key, v, &format!("must be in [{min}, {max}]")));
    }
    Ok(n)
}

fn parse_bool(raw: &BTreeMap<String, String>, key: &str) -> Result<bool, ConfigError> {
    let v = raw.get(key).map(String::as_str).unwrap_or("");
    match v.trim().to_ascii_lowercase().as_str() {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(invalid(key, v, "expected true or false")),
    }
}

/// Parses `listeners`, `advertised.listeners` and `listener.security.protocol.map` as Kafka's
/// `KafkaConfig` does: `NAME://host:port` entries, names upper-cased and unique, each name's
/// protocol from the map; advertised names a subset of the listeners' (a listener without an
/// advertised entry advertises its bind address); no two listeners on one port (but 0).
fn parse_listeners(raw: &BTreeMap<String, String>) -> Result<Vec<ListenerConfig>, ConfigError> {
    let map_value = &raw["listener.security.protocol.map"];
    let mut protocols = BTreeMap::new();
    for entry in map_value
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
    {
        let (name, protocol) = entry.split_once(':').ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                map_value,
                "expected NAME:PROTOCOL pairs",
            )
        })?;
        protocols.insert(
            name.trim().to_ascii_uppercase(),
            protocol.trim().to_ascii_uppercase(),
        );
    }
    let listeners_value = &raw["listeners"];
    let mut listeners: Vec<ListenerConfig> = Vec::new();
    for (name, host, port) in parse_endpoints("listeners", listeners_value)? {
        let protocol = match protocols.get(&name).map(String::as_str) {
            Some("PLAINTEXT") => SecurityProtocol::Plaintext,
            Some("SSL") | Some("SASL_PLAINTEXT") | Some("SASL_SSL") => {
                return Err(invalid(
                    "listeners",
                    listeners_value,
                    "only PLAINTEXT listeners are supported",
                ))
            }
            _ => {
                return Err(invalid(
                    "listeners",
                    listeners_value,
                    &format!("No security protocol defined for listener {name}"),
                ))
            }
        };
        if listeners.iter().any(|l| l.name == name) {
            return Err(invalid(
                "listeners",
                listeners_value,
                &format!("listener name {name} is used twice"),
            ));
        }
        if port != 0 && listeners.iter().any(|l| l.bind.port() == port) {
            return Err(invalid(
                "listeners",
                listeners_value,
                &format!("port {port} is used twice"),
            ));
        }
        let bind_host = if host.is_empty() { "0.0.0.0" } else { &host };
        let bind: SocketAddr = format!("{bind_host}:{port}")
            .parse()
            .or_else(|_| {
                std::net::ToSocketAddrs::to_socket_addrs(&(bind_host, port))
                    .ok()
                    .and_then(|mut it| it.next())
                    .ok_or(())
            })
            .map_err(|_| invalid("listeners", listeners_value, "cannot resolve host"))?;
        listeners.push(ListenerConfig {
            name,
            security_protocol: protocol,
            bind,
            advertised_host: bind_host.to_string(),
            advertised_port: port,
        });
    }
    if listeners.is_empty() {
        return Err(invalid("listeners", listeners_value, "no listener"));
    }
    let advertised_value = &raw["advertised.listeners"];
    for (name, host, port) in parse_endpoints("advertised.listeners", advertised_value)? {
        let Some(listener) = listeners.iter_mut().find(|l| l.name == name) else {
            return Err(invalid(
                "advertised.listeners",
                advertised_value,
                "advertised.listeners listener names must be equal to or a subset of the ones defined in listeners",
            ));
        };
        if host == "0.0.0.0" {
            return Err(invalid(
                "advertised.listeners",
                advertised_value,
                "0.0.0.0 is not a valid address to advertise",
            ));
        }
        listener.advertised_host = if host.is_empty() {
            listener.bind.ip().to_string()
        } else {
            host
        };
        listener.advertised_port = port;
    }
    Ok(listeners)
}

/// `NAME://host:port` entries (a bare `host:port` is `PLAINTEXT`), name upper-cased, IPv6 hosts
/// without brackets.
fn parse_endpoints(key: &str, value: &str) -> Result<Vec<(String, String, u16)>, ConfigError> {
    let mut out = Vec::new();
    for entry in value.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, rest) = entry.split_once("://").unwrap_or(("PLAINTEXT", entry));
        let name = name.trim().to_ascii_uppercase();
        if name.is_empty() {
            return Err(invalid(key, value, "a listener needs a name"));
        }
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| invalid(key, value, "expected NAME://HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| invalid(key, value, "port is not a number in [0, 65535]"))?;
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        out.push((name, host, port));
    }
    Ok(out)
}

/// Reads a TOML file into flat Kafka keys: `"log.dirs" = "x"` and `[log] dirs = "x"` both work.
pub fn read_toml_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let file_err = |reason: String| ConfigError::File {
        path: path.display().to_string(),
        reason,
    };
    let text = std::fs::read_to_string(path).map_err(|e| file_err(e.to_string()))?;
    let value: toml::Table = text
        .parse()
        .map_err(|e: toml::de::Error| file_err(e.to_string()))?;
    let mut out = BTreeMap::new();
    flatten_toml("", &toml::Value::Table(value), &mut out);
    Ok(out)
}

fn flatten_toml(prefix: &str, value: &toml::Value, out: &mut BTreeMap<String, String>) {
    match value {
        toml::Value::Table(t) => {
            for (k, v) in t {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_toml(&key, v, out);
            }
        }
        toml::Value::String(s) => {
            out.insert(prefix.to_string(), s.clone());
        }
        toml::Value::Array(items) => {
            let joined: Vec<String> = items
                .iter()
                .map(|i| match i {
                    toml::Value::String(s) => s.clone(),
                    other => other.to_string(),
                })
                .collect();
            out.insert(prefix.to_string(), joined.join(","));
        }
        other => {
            out.insert(prefix.to_string(), other.to_string());
        }
    }
}

/// Settings from `RIVULET_*` environment variables, mapped to Kafka names.
pub fn settings_from_env() -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (name, value) in std::env::vars() {
        if let Some(rest) = name.strip_prefix("RIVULET_") {
            let key = rest.to_ascii_lowercase().replace('_', ".");
            if BROKER_DEFAULTS.iter().any(|(k, _)| *k == key)
                || topic_config::is_topic_default_key(&key)
            {
                out.insert(key, value);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_kafka_defaults() {
        let c = Config::default();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.listeners[0].bind.port(), 9092);
        assert_eq!(c.listeners[0].advertised_host, "localhost");
        assert_eq!(c.listeners[0].name, "PLAINTEXT");
        assert_eq!(c.message_max_bytes, 1_048_588);
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        assert!(c.auto_create_topics);
        assert_eq!(c.log_dirs, vec![PathBuf::from("./rivulet-data")]);
        assert_eq!(c.metadata_log_dir(), Path::new("./rivulet-data"));
    }

    #[test]
    fn several_log_dirs_keep_their_order_and_refuse_duplicates() {
        let with = |v: &str| {
            let mut s = BTreeMap::new();
            s.insert("log.dirs".to_string(), v.to_string());
            Config::from_settings(s)
        };
        let c = with("/data/a, /data/b ,/data/c").unwrap();
        assert_eq!(
            c.log_dirs,
            vec![
                PathBuf::from("/data/a"),
                PathBuf::from("/data/b"),
                PathBuf::from("/data/c")
            ]
        );
        assert_eq!(c.metadata_log_dir(), Path::new("/data/a"));
        let dup = with("/data/a,/data/b,/data/a").unwrap_err().to_string();
        assert!(dup.contains("duplicate log directory /data/a"), "{dup}");
        // The same directory spelled two ways is still one directory.
        assert!(with("/data/a,/data/./a").is_err());
        assert!(with("/data/a,,/data/b").is_err());
        // `log.dir` is Kafka's single-directory spelling.
        let mut s = BTreeMap::new();
        s.insert("log.dir".to_string(), "/data/x".to_string());
        assert_eq!(
            Config::from_settings(s).unwrap().log_dirs,
            vec![PathBuf::from("/data/x")]
        );
    }

    #[test]
    fn overrides_and_aliases() {
        let mut s = BTreeMap::new();
        s.insert("listeners".into(), "PLAINTEXT://127.0.0.1:0".into());
        s.insert("log.roll.hours".into(), "2".into());
        s.insert("num.partitions".into(), "6".into());
        let c = Config::from_settings(s).unwrap();
        assert_eq!(c.listeners[0].bind.port(), 0);
        assert_eq!(c.raw["log.roll.ms"], "7200000");
        assert_eq!(c.num_partitions, 6);
    }

    #[test]
    fn unknown_and_invalid_refused() {
        let mut s = BTreeMap::new();
        s.insert("log.dirz".into(), "x".into());
        assert!(matches!(
            Config::from_settings(s),
            Err(ConfigError::Unknown(_))
        ));
        let mut s = BTreeMap::new();
        s.insert("num.partitions".into(), "zero".into());
        assert!(Config::from_settings(s).is_err());
        let mut s = BTreeMap::new();
        s.insert("listeners".into(), "SSL://h:1".into());
        assert!(Config::from_settings(s).is_err());
    }

    #[test]
    fn several_named_listeners() {
        let mut s = BTreeMap::new();
        s.insert(
            "listeners".into(),
            "PLAINTEXT://127.0.0.1:9092,internal://127.0.0.1:9093".into(),
        );
        s.insert(
            "listener.security.protocol.map".into(),
            "PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT".into(),
        );
        s.insert(
            "advertised.listeners".into(),
            "PLAINTEXT://broker.example:9092".into(),
        );
        let c = Config::from_settings(s.clone()).unwrap();
        let names: Vec<&str> = c.listeners.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["PLAINTEXT", "INTERNAL"]);
        assert_eq!(c.listeners[0].advertised_host, "broker.example");
        // Not advertised: the bind address is.
        assert_eq!(
            (
                c.listeners[1].advertised_host.as_str(),
                c.listeners[1].advertised_port
            ),
            ("127.0.0.1", 9093)
        );
        let refuse = |key: &str, value: &str| {
            let mut s = s.clone();
            s.insert(key.into(), value.into());
            Config::from_settings(s).is_err()
        };
        assert!(refuse("listeners", "PLAINTEXT://:1,PLAINTEXT://:2"));
        assert!(refuse("listeners", "PLAINTEXT://:1,INTERNAL://:1"));
        assert!(refuse("listeners", "OTHER://:1"));
        assert!(refuse("advertised.listeners", "OTHER://h:1"));
        assert!(refuse("advertised.listeners", "PLAINTEXT://0.0.0.0:1"));
    }

    #[test]
    fn broker_topic_defaults_are_validated() {
        let mut s = BTreeMap::new();
        s.insert("log.cleaner.min.cleanable.ratio".into(), "2".into());
        assert!(Config::from_settings(s).is_err());
        let mut s = BTreeMap::new();
        s.insert("offsets.topic.num.partitions".into(), "0".into());
        assert!(Config::from_settings(s).is_err());
    }

    #[test]
    fn toml_nested_and_flat() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("c.toml");
        std::fs::write(&p, "\"num.partitions\" = 3\n[log]\ndirs = \"/tmp/x\"\n").unwrap();
        let m = read_toml_file(&p).unwrap();
        assert_eq!(m["num.partitions"], "3");
        assert_eq!(m["log.dirs"], "/tmp/x");
    }
}
