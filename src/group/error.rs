//! Errors of the group coordinator, one per situation Kafka reports with its own code; they
//! become Kafka error codes in `handlers::error_codes` only.

/// Why a group operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GroupError {
    /// The member id (or the group) is not known to the coordinator (UNKNOWN_MEMBER_ID).
    #[error("the member id is not in the current generation")]
    UnknownMemberId,
    /// The request's generation is not the group's (ILLEGAL_GENERATION).
    #[error("generation {got} is not the group's generation {current}")]
    IllegalGeneration {
        /// The generation the request carried.
        got: i32,
        /// The group's generation.
        current: i32,
    },
    /// The group is rebalancing; the member must rejoin (REBALANCE_IN_PROGRESS).
    #[error("the group is rebalancing, so a rejoin is needed")]
    RebalanceInProgress,
    /// A dynamic member's first JoinGroup from v4: rejoin with the given id (KIP-394).
    #[error("a member id is required to join the group")]
    MemberIdRequired,
    /// Protocol type or protocols incompatible with the group (INCONSISTENT_GROUP_PROTOCOL).
    #[error("the member's protocol type or protocols are incompatible with the group")]
    InconsistentGroupProtocol,
    /// `group.max.size` members already (GROUP_MAX_SIZE_REACHED).
    #[error("the group has reached its maximum size")]
    GroupMaxSizeReached,
    /// Another member id now holds this group.instance.id (FENCED_INSTANCE_ID, KIP-345).
    #[error("the static member was fenced by a newer member with the same group.instance.id")]
    FencedInstanceId,
    /// The group is being removed; retry after finding the coordinator (COORDINATOR_NOT_AVAILABLE).
    #[error("the group is being removed")]
    CoordinatorNotAvailable,
    /// The coordinator is shutting down (NOT_COORDINATOR); also what storage errors become,
    /// as Kafka maps KAFKA_STORAGE_ERROR for its coordinators.
    #[error("this broker is not the coordinator any more")]
    NotCoordinator,
    /// No such group (GROUP_ID_NOT_FOUND).
    #[error("group {0} not found")]
    GroupIdNotFound(String),
    /// The group still has members (NON_EMPTY_GROUP).
    #[error("the group is not empty")]
    NonEmptyGroup,
    /// An empty group id where a real one is needed (INVALID_GROUP_ID).
    #[error("the group id is empty")]
    InvalidGroupId,
    /// A session timeout outside [group.min.session.timeout.ms, group.max.session.timeout.ms].
    #[error("session timeout {got} ms is outside [{min}, {max}]")]
    InvalidSessionTimeout {
        /// The requested session timeout.
        got: i32,
        /// `group.min.session.timeout.ms`.
        min: i32,
        /// `group.max.session.timeout.ms`.
        max: i32,
    },
    /// Commit metadata longer than `offset.metadata.max.bytes` (OFFSET_METADATA_TOO_LARGE).
    #[error("offset metadata of {len} characters exceeds offset.metadata.max.bytes {max}")]
    OffsetMetadataTooLarge {
        /// The metadata length (UTF-16 code units, as Java counts them).
        len: usize,
        /// The configured limit.
        max: usize,
    },
    /// OffsetDelete of a topic the consumer group subscribes to (GROUP_SUBSCRIBED_TO_TOPIC).
    #[error("the group is subscribed to topic {0}")]
    GroupSubscribedToTopic(String),
    /// The request's principal may not use this group (GROUP_AUTHORIZATION_FAILED).
    #[error("not authorized to access group")]
    GroupAuthorizationFailed,
    /// An unknown coordinator key type in FindCoordinator (INVALID_REQUEST).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Writing or syncing the group log failed.
    #[error("group log: {0}")]
    Storage(String),
    /// A request Kafka's coordinator treats as an internal error (UNKNOWN_SERVER_ERROR).
    #[error("unexpected: {0}")]
    Unexpected(String),
}
