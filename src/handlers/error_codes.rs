//! The only place internal errors become Kafka error codes. Matches are exhaustive with no
//! catch-all arm, so a new error variant forces a decision here.

use kafka_protocol::error::ResponseError;

use super::context::ResourceType;
use crate::features::FeatureError;
use crate::group::GroupError;
use crate::log::{BatchError, LogError};
use crate::logging::LoggerError;
use crate::partition::{PartitionError, ProducerError};
use crate::resource_configs::ResourceConfigError;
use crate::topics::TopicError;
use crate::txn::TxnError;

/// The Kafka error for an ACL check that refused the request's principal.
pub fn denied(resource_type: ResourceType) -> ResponseError {
    match resource_type {
        ResourceType::Topic => ResponseError::TopicAuthorizationFailed,
        ResourceType::Group => ResponseError::GroupAuthorizationFailed,
        ResourceType::Cluster => ResponseError::ClusterAuthorizationFailed,
        ResourceType::TransactionalId => ResponseError::TransactionalIdAuthorizationFailed,
    }
}

/// The Kafka error for a partition operation that failed (an append, DeleteRecords).
pub fn partition_error(e: &PartitionError) -> ResponseError {
    match e {
        PartitionError::Batch(b) => batch_error(b),
        PartitionError::MultipleBatches
        | PartitionError::KeylessRecordOnCompactedTopic { .. }
        | PartitionError::UndecodableBatch(_) => ResponseError::InvalidRecord,
        PartitionError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        PartitionError::InvalidTimestamp { .. } => ResponseError::InvalidTimestamp,
        PartitionError::Producer(p) => producer_error(p),
        PartitionError::InvalidTxnState { .. } => ResponseError::InvalidTxnState,
        PartitionError::Control(_) => ResponseError::InvalidRecord,
        PartitionError::PolicyViolation(_) => ResponseError::PolicyViolation,
        PartitionError::Log(l) => log_error(l),
    }
}

/// The Kafka error for a refused feature update.
pub fn feature_error(e: &FeatureError) -> ResponseError {
    match e {
        FeatureError::InvalidUpdate(_) => ResponseError::InvalidUpdateVersion,
        FeatureError::Io(_) => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error for a refused log level change.
pub fn logger_error(e: &LoggerError) -> ResponseError {
    match e {
        LoggerError::InvalidConfig(_) => ResponseError::InvalidConfig,
        LoggerError::InvalidRequest(_) => ResponseError::InvalidRequest,
    }
}

/// The Kafka error for a refused group or client metrics setting.
pub fn resource_config_error(e: &ResourceConfigError) -> ResponseError {
    match e {
        ResourceConfigError::InvalidConfig(_) => ResponseError::InvalidConfig,
        ResourceConfigError::InvalidRequest(_) => ResponseError::InvalidRequest,
        ResourceConfigError::Io(_) => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error for a topic operation that failed.
pub fn topic_error(e: &TopicError) -> ResponseError {
    match e {
        TopicError::InvalidName(_) => ResponseError::InvalidTopicException,
        TopicError::AlreadyExists(_) => ResponseError::TopicAlreadyExists,
        TopicError::Unknown(_) => ResponseError::UnknownTopicOrPartition,
        TopicError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        TopicError::InvalidReplicationFactor(_) => ResponseError::InvalidReplicationFactor,
        TopicError::InvalidReplicaAssignment(_) => ResponseError::InvalidReplicaAssignment,
        TopicError::InvalidRequest(_) => ResponseError::InvalidRequest,
        TopicError::InvalidConfig(_) => ResponseError::InvalidConfig,
        TopicError::Storage(_) | TopicError::Io(_) | TopicError::LogDir(_) => {
            ResponseError::KafkaStorageError
        }
    }
}

/// The Kafka error for a record batch that failed validation.
pub fn batch_error(e: &BatchError) -> ResponseError {
    match e {
        BatchError::CorruptMessage { .. } => ResponseError::CorruptMessage,
        BatchError::InvalidRecord(_) | BatchError::Truncated { .. } => ResponseError::InvalidRecord,
    }
}

/// The Kafka error for a log operation that failed.
pub fn log_error(e: &LogError) -> ResponseError {
    match e {
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Batch(b) => batch_error(b),
        LogError::RecordBatchTooLarge { .. } => ResponseError::RecordListTooLarge,
        // A partition deleted while a request held it: the topic is gone.
        LogError::Closed { .. } => ResponseError::UnknownTopicOrPartition,
        // Only a follower's (or the cleaner's) append can go backwards; never a client's.
        LogError::OffsetsOutOfOrder { .. } => ResponseError::UnknownServerError,
        // Seen only when a move broke after its commit point: the partition is unusable until
        // a restart, like a partition in an offline log directory.
        LogError::Io(_)
        | LogError::Corrupt(_)
        | LogError::SyncFailed(_)
        | LogError::Sealed { .. } => ResponseError::KafkaStorageError,
    }
}

/// The Kafka error for an idempotent batch that was refused.
pub fn producer_error(e: &ProducerError) -> ResponseError {
    match e {
        ProducerError::InvalidProducerEpoch { .. } => ResponseError::InvalidProducerEpoch,
        ProducerError::OutOfOrderSequence { .. }
        | ProducerError::InvalidSequenceForNewEpoch { .. } => {
            ResponseError::OutOfOrderSequenceNumber
        }
        ProducerError::TransactionalWriteExpected { .. } => ResponseError::InvalidTxnState,
        ProducerError::CoordinatorFenced { .. } => ResponseError::TransactionCoordinatorFenced,
    }
}

/// The Kafka error for a group coordinator operation that was refused.
pub fn group_error(e: &GroupError) -> ResponseError {
    match e {
        GroupError::UnknownMemberId => ResponseError::UnknownMemberId,
        GroupError::IllegalGeneration { .. } => ResponseError::IllegalGeneration,
        GroupError::RebalanceInProgress => ResponseError::RebalanceInProgress,
        GroupError::MemberIdRequired => ResponseError::MemberIdRequired,
        GroupError::InconsistentGroupProtocol => ResponseError::InconsistentGroupProtocol,
        GroupError::GroupMaxSizeReached => ResponseError::GroupMaxSizeReached,
        GroupError::FencedInstanceId => ResponseError::FencedInstanceId,
        GroupError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
        // Kafka's coordinators answer NOT_COORDINATOR for KAFKA_STORAGE_ERROR, so clients
        // look the coordinator up again and retry.
        GroupError::NotCoordinator | GroupError::Storage(_) => ResponseError::NotCoordinator,
        GroupError::GroupIdNotFound(_) => ResponseError::GroupIdNotFound,
        GroupError::NonEmptyGroup => ResponseError::NonEmptyGroup,
        GroupError::InvalidGroupId => ResponseError::InvalidGroupId,
        GroupError::InvalidSessionTimeout { .. } => ResponseError::InvalidSessionTimeout,
        GroupError::OffsetMetadataTooLarge { .. } => ResponseError::OffsetMetadataTooLarge,
        GroupError::GroupSubscribedToTopic(_) => ResponseError::GroupSubscribedToTopic,
        GroupError::InvalidRequest(_) => ResponseError::InvalidRequest,
        GroupError::GroupAuthorizationFailed => ResponseError::GroupAuthorizationFailed,
        GroupError::Unexpected(_) => ResponseError::UnknownServerError,
    }
}

/// The error code of an optional group error (0 for success).
pub fn group_code(e: Option<&GroupError>) -> i16 {
    e.map_or(0, |e| group_error(e).code())
}

/// The Kafka error for a refused transactional request. `producer_fenced` says whether the
/// request version knows PRODUCER_FENCED; older versions get INVALID_PRODUCER_EPOCH, as Kafka
/// answers them.
pub fn txn_error(e: &TxnError, producer_fenced: bool) -> ResponseError {
    match e {
        TxnError::InvalidRequest(_) => ResponseError::InvalidRequest,
        TxnError::InvalidTransactionTimeout { .. } => ResponseError::InvalidTransactionTimeout,
        TxnError::ConcurrentTransactions => ResponseError::ConcurrentTransactions,
        TxnError::ProducerFenced if producer_fenced => ResponseError::ProducerFenced,
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::InvalidTxnState(_) => ResponseError::InvalidTxnState,
        TxnError::NotInTransaction(_) => ResponseError::TransactionAbortable,
        TxnError::TransactionalIdNotFound => ResponseError::TransactionalIdNotFound,
        // Kafka's transaction coordinator answers NOT_COORDINATOR when its log write fails
        // or it is unloading, so clients find the coordinator again and retry.
        TxnError::Coordinator(_) => ResponseError::NotCoordinator,
        TxnError::ProducerIdAllocation(_) => ResponseError::CoordinatorNotAvailable,
    }
}

/// The Kafka error a transactional Produce gets when its partition could not be verified or
/// added (`AddPartitionsToTxnManager`, by Produce version): not in the transaction is
/// INVALID_TXN_STATE up to v10 and TRANSACTION_ABORTABLE from v11; a stale epoch is always
/// INVALID_PRODUCER_EPOCH; an unreachable or busy coordinator NOT_ENOUGH_REPLICAS (v12+ passes
/// CONCURRENT_TRANSACTIONS through).
pub fn produce_verification_error(e: &TxnError, version: i16) -> ResponseError {
    match e {
        TxnError::NotInTransaction(_) if version <= 10 => ResponseError::InvalidTxnState,
        TxnError::NotInTransaction(_) => ResponseError::TransactionAbortable,
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        TxnError::InvalidProducerIdMapping => ResponseError::InvalidProducerIdMapping,
        TxnError::ConcurrentTransactions if version >= 12 => ResponseError::ConcurrentTransactions,
        TxnError::InvalidTxnState(_) | TxnError::InvalidRequest(_) => {
            ResponseError::InvalidTxnState
        }
        _ => ResponseError::NotEnoughReplicas,
    }
}

/// The Kafka error of a TxnOffsetCommit whose offsets partition is not in the transaction
/// (INVALID_TXN_STATE up to v3, TRANSACTION_ABORTABLE at v4); other errors as the coordinator
/// answers them, PRODUCER_FENCED as INVALID_PRODUCER_EPOCH.
pub fn txn_offset_commit_verification_error(e: &TxnError, version: i16) -> ResponseError {
    match e {
        TxnError::NotInTransaction(_) if version <= 3 => ResponseError::InvalidTxnState,
        TxnError::ProducerFenced => ResponseError::InvalidProducerEpoch,
        other => txn_error(other, true),
    }
}
