//! What every handler receives: the request's context (broker, header, version, client, peer,
//! listener, session with its principal) and the one authorization hook.
//!
//! A [`Session`] lives as long as its connection and is changed by the connection only (what the
//! client said of itself in ApiVersions; SASL state later). A handler reads it through its
//! [`RequestContext`] and calls [`RequestContext::authorize`] where Kafka's `KafkaApis` checks an
//! ACL, answering Kafka's `*_AUTHORIZATION_FAILED` code when it is refused. The broker's
//! [`Authorizer`] decides; until SASL and ACLs exist it is [`AllowAll`], and every principal is
//! ANONYMOUS, as on a Kafka PLAINTEXT listener without an authorizer.

use std::net::SocketAddr;
use std::sync::Arc;

use kafka_protocol::messages::{ApiKey, RequestHeader};

use crate::broker::Broker;
use crate::config::{ListenerConfig, SecurityProtocol};

/// A principal as Kafka names it (`KafkaPrincipal`): a type and a name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    /// The principal type ("User").
    pub principal_type: String,
    /// The principal name.
    pub name: String,
}

impl KafkaPrincipal {
    /// `User:ANONYMOUS`, the principal of an unauthenticated connection.
    pub fn anonymous() -> KafkaPrincipal {
        KafkaPrincipal {
            principal_type: "User".to_string(),
            name: "ANONYMOUS".to_string(),
        }
    }
}

impl std::fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}

/// An ACL operation (Kafka's `AclOperation`, with its wire code).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AclOperation {
    /// READ (3).
    Read,
    /// WRITE (4).
    Write,
    /// CREATE (5).
    Create,
    /// DELETE (6).
    Delete,
    /// ALTER (7).
    Alter,
    /// DESCRIBE (8).
    Describe,
    /// CLUSTER_ACTION (9).
    ClusterAction,
    /// DESCRIBE_CONFIGS (10).
    DescribeConfigs,
    /// ALTER_CONFIGS (11).
    AlterConfigs,
    /// IDEMPOTENT_WRITE (12).
    IdempotentWrite,
}

/// The operations Kafka supports on a topic (`AclEntry.supportedOperations`).
pub const TOPIC_OPERATIONS: &[AclOperation] = &[
    AclOperation::Read,
    AclOperation::Write,
    AclOperation::Create,
    AclOperation::Delete,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
];

/// The operations Kafka supports on the cluster.
pub const CLUSTER_OPERATIONS: &[AclOperation] = &[
    AclOperation::Create,
    AclOperation::Alter,
    AclOperation::Describe,
    AclOperation::ClusterAction,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
    AclOperation::IdempotentWrite,
];

/// The operations Kafka supports on a group.
pub const GROUP_OPERATIONS: &[AclOperation] = &[
    AclOperation::Read,
    AclOperation::Delete,
    AclOperation::Describe,
    AclOperation::DescribeConfigs,
    AclOperation::AlterConfigs,
];

/// Kafka's "not requested" marker for authorized-operation fields.
pub const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

impl AclOperation {
    /// The operation's code (bit position in authorized-operations fields).
    pub fn code(self) -> i8 {
        match self {
            AclOperation::Read => 3,
            AclOperation::Write => 4,
            AclOperation::Create => 5,
            AclOperation::Delete => 6,
            AclOperation::Alter => 7,
            AclOperation::Describe => 8,
            AclOperation::ClusterAction => 9,
            AclOperation::DescribeConfigs => 10,
            AclOperation::AlterConfigs => 11,
            AclOperation::IdempotentWrite => 12,
        }
    }
}

/// The kind of a resource, for checks "on any resource of this type".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// The cluster.
    Cluster,
    /// Topics.
    Topic,
    /// Consumer groups.
    Group,
    /// Transactional ids.
    TransactionalId,
}

/// A resource an ACL protects (Kafka's `ResourcePattern`, literal names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource<'a> {
    /// The cluster.
    Cluster,
    /// A topic by name.
    Topic(&'a str),
    /// A consumer group by id.
    Group(&'a str),
    /// A transactional id.
    TransactionalId(&'a str),
}

impl Resource<'_> {
    /// The resource's type.
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Resource::Cluster => ResourceType::Cluster,
            Resource::Topic(_) => ResourceType::Topic,
            Resource::Group(_) => ResourceType::Group,
            Resource::TransactionalId(_) => ResourceType::TransactionalId,
        }
    }
}

/// Decides whether a principal may perform an operation on a resource (Kafka's `Authorizer`).
pub trait Authorizer: Send + Sync + std::fmt::Debug {
    /// Whether `principal` may perform `operation` on `resource`.
    fn authorize(
        &self,
        principal: &KafkaPrincipal,
        operation: AclOperation,
        resource: Resource<'_>,
    ) -> bool;

    /// Kafka's `authorizeByResourceType`: whether `principal` may perform `operation` on at
    /// least one resource of `resource_type` (InitProducerId without IDEMPOTENT_WRITE).
    fn authorize_any(
        &self,
        principal: &KafkaPrincipal,
        operation: AclOperation,
        resource_type: ResourceType,
    ) -> bool;
}

/// No authorizer configured: everything is allowed, as in Kafka without `authorizer.class.name`.
#[derive(Debug, Default, Clone, Copy)]
pub struct AllowAll;

impl Authorizer for AllowAll {
    fn authorize(&self, _: &KafkaPrincipal, _: AclOperation, _: Resource<'_>) -> bool {
        true
    }

    fn authorize_any(&self, _: &KafkaPrincipal, _: AclOperation, _: ResourceType) -> bool {
        true
    }
}

/// A bound listener: its configuration and the port it actually got.
#[derive(Debug, Clone)]
pub struct Listener {
    /// The listener's name.
    pub name: String,
    /// How its connections are secured.
    pub security_protocol: SecurityProtocol,
    /// The address it is bound to.
    pub bound: SocketAddr,
    /// The host clients are told to use.
    pub advertised_host: String,
    /// The port clients are told to use (the bound one when configured as 0).
    pub advertised_port: i32,
}

impl Listener {
    /// The listener `config` describes, bound at `bound`.
    pub fn bound(config: &ListenerConfig, bound: SocketAddr) -> Listener {
        Listener {
            name: config.name.clone(),
            security_protocol: config.security_protocol,
            bound,
            advertised_host: config.advertised_host.clone(),
            advertised_port: if config.advertised_port == 0 {
                bound.port() as i32
            } else {
                config.advertised_port as i32
            },
        }
    }
}

/// What a connection knows about its client across requests.
#[derive(Debug, Clone)]
pub struct Session {
    /// Who the client is (ANONYMOUS until authentication exists).
    pub principal: KafkaPrincipal,
    /// The client's software name and version from ApiVersions v3+ (KIP-511).
    pub client_software: Option<(String, String)>,
}

impl Session {
    /// A new connection's session.
    pub fn new() -> Session {
        Session {
            principal: KafkaPrincipal::anonymous(),
            client_software: None,
        }
    }
}

impl Default for Session {
    fn default() -> Session {
        Session::new()
    }
}

/// One request's context: everything a handler may need besides the request body.
#[derive(Debug, Clone, Copy)]
pub struct RequestContext<'a> {
    /// The broker.
    pub broker: &'a Broker,
    /// The request header.
    pub header: &'a RequestHeader,
    /// The API.
    pub api_key: ApiKey,
    /// The request's version.
    pub version: i16,
    /// The client's address.
    pub peer: Option<SocketAddr>,
    /// The listener the request came in on.
    pub listener: &'a Arc<Listener>,
    /// The connection's session.
    pub session: &'a Session,
}

impl<'a> RequestContext<'a> {
    /// The client id from the header ("" when null).
    pub fn client_id(&self) -> &'a str {
        self.header.client_id.as_deref().unwrap_or_default()
    }

    /// The session's principal.
    pub fn principal(&self) -> &'a KafkaPrincipal {
        &self.session.principal
    }

    /// The one authorization hook: whether this request's principal may perform `operation` on
    /// `resource`. Refusals are logged at debug, as Kafka's authorizer logs them.
    pub fn authorize(&self, operation: AclOperation, resource: Resource<'_>) -> bool {
        let allowed = self
            .broker
            .authorizer
            .authorize(self.principal(), operation, resource);
        if !allowed {
            tracing::debug!(principal = %self.principal(), ?operation, ?resource, api = ?self.api_key, "authorization denied");
        }
        allowed
    }

    /// Kafka's authorized-operations bit set for `resource`: the bit of every operation in
    /// `supported` that the principal may perform (all of them without an authorizer).
    pub fn authorized_operations(&self, resource: Resource<'_>, supported: &[AclOperation]) -> i32 {
        supported
            .iter()
            .filter(|op| {
                self.broker
                    .authorizer
                    .authorize(self.principal(), **op, resource)
            })
            .fold(0, |bits, op| bits | (1 << op.code()))
    }

    /// Whether the principal may perform `operation` on some resource of `resource_type`.
    pub fn authorize_any(&self, operation: AclOperation, resource_type: ResourceType) -> bool {
        self.broker
            .authorizer
            .authorize_any(self.principal(), operation, resource_type)
    }
}
