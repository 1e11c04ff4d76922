//! The group coordinator and committed offsets (Kafka's group coordinator: `Group` and its
//! types, `ClassicGroup`, `ClassicGroupState`, the group methods of `GroupMetadataManager`,
//! `OffsetMetadataManager`), a shard type of the coordinator runtime (`crate::coordinator`).
//!
//! This node is the coordinator of every group. Groups live in `__consumer_offsets-N`
//! partitions by Kafka's hash of the group id (`offsets.topic.num.partitions`, 50 by default,
//! fixed when the data directory is first used). Under each group id's lock (`shard`) sit a
//! [`Group`] (an enum of group types, Kafka's `Group` interface; classic today, see `classic`
//! for its state machine) and, beside it, the group's [`OffsetStore`] (`offsets`), which holds
//! committed offsets, commits on their way to the disk and offsets pending in transactions.
//! [`GroupCoordinator`] is the API the handlers call; `records` is what the log holds;
//! `legacy` upgrades a data directory of the single group log that came before.
//!
//! # States
//!
//! Every state below lists what the coordinator does with each request (action) and what moves
//! the group to another state (transition), as Kafka's `ClassicGroupState` documents them.
//!
//! **Empty**: no members; also a group that only stores offsets (manual assignment).
//! - action: JoinGroup from a new member is accepted (v4+: first answered MEMBER_ID_REQUIRED
//!   with the member id to use; that pending id expires after the session timeout).
//!   SyncGroup, Heartbeat, LeaveGroup: UNKNOWN_MEMBER_ID. OffsetCommit only with generation
//!   -1 and no member id (else UNKNOWN_MEMBER_ID / ILLEGAL_GENERATION). OffsetFetch allowed.
//! - transition: a member joins => PreparingRebalance, with the join phase held open for
//!   `group.initial.rebalance.delay.ms`, extended by that delay while members keep arriving,
//!   up to the rebalance timeout. All offsets expired (`offsets.retention.minutes` counted
//!   from when the group became Empty) or DeleteGroups => Dead.
//!
//! **PreparingRebalance**: the join phase.
//! - action: JoinGroup requests are parked until every known member (and every pending
//!   member id) has rejoined, then all are answered at once with the new generation; only the
//!   leader's answer lists the members and their metadata. Heartbeat and SyncGroup:
//!   REBALANCE_IN_PROGRESS. LeaveGroup removes the member. OffsetCommit from the previous
//!   generation is accepted. OffsetFetch allowed.
//! - transition: every member rejoined, or the rebalance timeout (the largest of the members')
//!   passed, removing the dynamic members that did not rejoin => CompletingRebalance, or
//!   Empty if none is left. Protocol chosen by vote among the protocols every member supports.
//!
//! **CompletingRebalance**: waiting for the leader's assignment.
//! - action: SyncGroup from followers is parked until the leader's SyncGroup arrives and its
//!   assignment is durable; then every parked SyncGroup gets its member's assignment.
//!   Heartbeat answers normally. OffsetCommit: REBALANCE_IN_PROGRESS. A member that repeats
//!   its JoinGroup unchanged gets the same answer again.
//! - transition: leader's assignment stored => Stable. A new member, a member with new
//!   metadata, a leaving member or an expired session => PreparingRebalance (parked SyncGroups
//!   are answered REBALANCE_IN_PROGRESS). Members that do not send SyncGroup within the
//!   rebalance timeout are removed => PreparingRebalance.
//!
//! **Stable**: every member has its assignment.
//! - action: Heartbeat answers normally; SyncGroup returns the member's assignment; JoinGroup
//!   of a follower with unchanged metadata returns the current generation; OffsetCommit from
//!   members of the current generation. A static member (`group.instance.id`) that rejoins
//!   with a new member id and no protocol change takes over its old member id's place and
//!   assignment without a rebalance (the old id is fenced: FENCED_INSTANCE_ID).
//! - transition: an expired session, a LeaveGroup, a JoinGroup from the leader or from a
//!   member with new metadata, a new member => PreparingRebalance.
//!
//! **Dead**: the group is being removed.
//! - action: every request is answered as if the group did not exist (the coordinator looks
//!   the id up again), DescribeGroups reports Dead for unknown groups.
//! - transition: none; the group is gone from the coordinator.
//!
//! # Timers
//!
//! Time is an input (`now_ms`); the server calls [`GroupCoordinator::tick`] every 100 ms.
//! Sessions expire `session.timeout.ms` after the last heartbeat (or JoinGroup answer, SyncGroup
//! answer, offset commit); a new member's parked JoinGroup expires after 5 minutes, as Kafka's
//! new-member join timeout.

mod classic;
mod coordinator;
mod error;
pub mod legacy;
mod member;
mod offsets;
mod records;
mod shard;
mod types;

#[cfg(test)]
mod tests;

pub use crate::coordinator::Waiter;
pub use classic::{
    AfterPersist, ClassicGroup, JoinOutcome, JoinRequest, JoinedMember, LeaveMember, LeaveResult,
    SyncOutcome, SyncRequest, CONSUMER_PROTOCOL_TYPE,
};
pub use coordinator::{
    FetchedOffset, GroupCoordinator, GroupDescription, GroupListing, MemberDescription, GROUP_TOPIC,
};
pub use error::GroupError;
pub use member::{subscribed_topics, Member, Protocol};
pub use offsets::{
    CommitAuthor, CommitPartition, CommittedOffset, Ctx, ExpirationBase, OffsetStore,
};
pub use records::{GroupRecord, GroupValue, MemberValue, OffsetValue, RecordError};
pub use shard::{GroupEntry, GroupShard};
pub use types::{Group, GroupType};

/// The group coordinator settings, under Kafka's names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupConfig {
    /// `group.initial.rebalance.delay.ms`: how long an Empty group's first join phase waits
    /// for more members.
    pub initial_rebalance_delay_ms: i64,
    /// `group.min.session.timeout.ms`.
    pub min_session_timeout_ms: i32,
    /// `group.max.session.timeout.ms`.
    pub max_session_timeout_ms: i32,
    /// `group.max.size`.
    pub max_size: usize,
    /// Kafka's fixed new-member join timeout (5 minutes).
    pub new_member_join_timeout_ms: i64,
    /// `offsets.retention.minutes`, in milliseconds.
    pub offsets_retention_ms: i64,
    /// `offsets.retention.check.interval.ms`.
    pub offsets_retention_check_interval_ms: i64,
    /// `offset.metadata.max.bytes`.
    pub offset_metadata_max_bytes: usize,
    /// `offsets.topic.segment.bytes`: segment size of the group log.
    pub segment_bytes: u64,
    /// `offsets.topic.num.partitions`: partitions of the group log for a new data directory.
    pub num_partitions: i32,
}

impl Default for GroupConfig {
    /// Kafka's defaults.
    fn default() -> GroupConfig {
        GroupConfig {
            initial_rebalance_delay_ms: 3000,
            min_session_timeout_ms: 6000,
            max_session_timeout_ms: 1_800_000,
            max_size: i32::MAX as usize,
            new_member_join_timeout_ms: 300_000,
            offsets_retention_ms: 10_080 * 60_000,
            offsets_retention_check_interval_ms: 600_000,
            offset_metadata_max_bytes: 4096,
            segment_bytes: 104_857_600,
            num_partitions: 50,
        }
    }
}

/// The states of a classic group (see the module documentation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupState {
    /// No members.
    Empty,
    /// Join phase.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Assignment handed out.
    Stable,
    /// Being removed.
    Dead,
}

impl GroupState {
    /// The name Kafka reports (DescribeGroups, ListGroups).
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }

    /// The states a group may enter this one from (Kafka's `validPreviousStates`).
    pub fn valid_previous_states(self) -> &'static [GroupState] {
        use GroupState::*;
        match self {
            Empty => &[PreparingRebalance],
            PreparingRebalance => &[Stable, CompletingRebalance, Empty],
            CompletingRebalance => &[PreparingRebalance],
            Stable => &[CompletingRebalance],
            Dead => &[Stable, PreparingRebalance, CompletingRebalance, Empty, Dead],
        }
    }
}
