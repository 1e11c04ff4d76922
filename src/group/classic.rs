//! The classic group state machine: membership, rebalances, timers (Kafka's `ClassicGroup` and
//! the classic-group half of `GroupMetadataManager`, method for method).
//!
//! A [`ClassicGroup`] is plain data driven by explicit calls that carry the time (`Ctx::now`):
//! the request methods (`join`, `sync`, `heartbeat`, `leave`), `tick` for the timers, and
//! `after_persist` once records it asked for are committed. It does no I/O: records to append go
//! into `Ctx::records`, follow-ups that must wait for the commit into `Ctx::follow_ups`, and
//! parked requests are answered through oneshot channels held by their members. Its committed
//! offsets are not its own: they live beside it in the group's `OffsetStore`.
//!
//! Timers are deadlines stored in the group (Kafka keeps them in a timer wheel under the same
//! keys): the join timer (initial delay or rebalance timeout), the sync timer (rebalance
//! timeout for SyncGroups after a join phase), and one heartbeat deadline per member or pending
//! member. Scheduling a timer replaces the previous one of its key, as in Kafka.

use std::collections::{BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::member::{subscribed_topics, Member, Protocol};
use super::offsets::{CommitAuthor, Ctx, ExpirationBase};
use super::records::{GroupRecord, GroupValue, MemberValue};
use super::{GroupError, GroupState};
use crate::coordinator::snapshot::SnapshotRecord;
pub use crate::coordinator::Waiter;

/// The protocol type of Kafka consumers (`ConsumerProtocol.PROTOCOL_TYPE`).
pub const CONSUMER_PROTOCOL_TYPE: &str = "consumer";

/// The answer to a JoinGroup, before version-specific encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinOutcome {
    /// The error, None for success.
    pub error: Option<GroupError>,
    /// The member id the client must use from now on.
    pub member_id: String,
    /// The new generation, -1 on error.
    pub generation_id: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The selected protocol.
    pub protocol_name: Option<String>,
    /// The leader's member id ("" on error).
    pub leader: String,
    /// v9: the static leader rejoined; it must not compute a new assignment.
    pub skip_assignment: bool,
    /// Every member with its metadata, for the leader only.
    pub members: Vec<JoinedMember>,
}

/// A member as the leader sees it in its JoinGroup response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JoinedMember {
    /// The member id.
    pub member_id: String,
    /// Its group.instance.id.
    pub group_instance_id: Option<String>,
    /// Its metadata for the selected protocol.
    pub metadata: Bytes,
}

impl JoinOutcome {
    /// An error answer as Kafka builds it (generation -1, empty leader, no protocol).
    pub fn error(error: GroupError, member_id: impl Into<String>) -> JoinOutcome {
        JoinOutcome {
            error: Some(error),
            member_id: member_id.into(),
            generation_id: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncOutcome {
    /// The error, None for success.
    pub error: Option<GroupError>,
    /// The group's protocol type (success only).
    pub protocol_type: Option<String>,
    /// The selected protocol (success only).
    pub protocol_name: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

impl SyncOutcome {
    /// An error answer with an empty assignment.
    pub fn error(error: GroupError) -> SyncOutcome {
        SyncOutcome {
            error: Some(error),
            protocol_type: None,
            protocol_name: None,
            assignment: Bytes::new(),
        }
    }
}

/// A JoinGroup as the state machine needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The member id, "" for a new member.
    pub member_id: String,
    /// group.instance.id (v5+).
    pub group_instance_id: Option<String>,
    /// The protocol type ("consumer").
    pub protocol_type: String,
    /// Supported protocols in preference order.
    pub protocols: Vec<Protocol>,
    /// Session timeout (already validated against the broker bounds).
    pub session_timeout_ms: i32,
    /// Rebalance timeout (the session timeout for v0).
    pub rebalance_timeout_ms: i32,
    /// The client id from the request header.
    pub client_id: String,
    /// The client address as Kafka prints it ("/127.0.0.1").
    pub client_host: String,
    /// The request version (v4+ requires a known member id, v9 may skip assignment).
    pub version: i16,
}

/// A SyncGroup as the state machine needs it.
#[derive(Debug, Clone)]
pub struct SyncRequest {
    /// The member id.
    pub member_id: String,
    /// group.instance.id (v3+).
    pub group_instance_id: Option<String>,
    /// The generation the member joined.
    pub generation_id: i32,
    /// v5: the protocol type the member expects.
    pub protocol_type: Option<String>,
    /// v5: the protocol the member expects.
    pub protocol_name: Option<String>,
    /// The leader's assignment, per member id (empty for followers).
    pub assignments: Vec<(String, Bytes)>,
}

/// One member named in a LeaveGroup.
#[derive(Debug, Clone)]
pub struct LeaveMember {
    /// The member id ("" to remove a static member by instance id).
    pub member_id: String,
    /// Its group.instance.id.
    pub group_instance_id: Option<String>,
}

/// The answer for one leaving member.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaveResult {
    /// The member id as requested.
    pub member_id: String,
    /// The instance id as requested.
    pub group_instance_id: Option<String>,
    /// The error, None for success.
    pub error: Option<GroupError>,
}

/// Work to do once the records an operation appended are durable.
#[derive(Debug)]
pub enum AfterPersist {
    /// The leader's assignment for `generation` is stored: hand it out and become Stable.
    Assignment {
        /// The generation it was computed for.
        generation: i32,
        /// Assignment per member id (every member has one, maybe empty).
        assignment: HashMap<String, Bytes>,
    },
    /// A known static member rejoined a Stable group under a new member id without changing
    /// the selected protocol: answer its JoinGroup (or revert the replacement on failure).
    StaticJoin {
        /// The new member id.
        new_member_id: String,
        /// The member id it replaced.
        old_member_id: String,
        /// The group.instance.id.
        instance_id: String,
        /// The leader before the replacement (pre-v9 responses name it).
        leader_before: String,
        /// Protocols before the rejoin, restored on failure.
        old_protocols: Vec<Protocol>,
        /// Rebalance timeout before the rejoin.
        old_rebalance_timeout_ms: i32,
        /// Session timeout before the rejoin.
        old_session_timeout_ms: i32,
        /// Whether the request was v9+ (KIP-814 skip_assignment).
        supports_skip_assignment: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum JoinTimerKind {
    /// `group.initial.rebalance.delay.ms` after an Empty group got its first member; extended
    /// while members keep arriving, up to the rebalance timeout.
    Initial { delay: i64, remaining: i64 },
    /// The rebalance timeout of a join phase.
    Rebalance,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct JoinTimer {
    pub(super) deadline: i64,
    pub(super) kind: JoinTimerKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct SyncTimer {
    pub(super) deadline: i64,
    pub(super) generation: i32,
}

/// A classic consumer group: its members, generation and timers.
#[derive(Debug)]
pub struct ClassicGroup {
    pub(super) id: String,
    pub(super) state: GroupState,
    pub(super) previous_state: GroupState,
    /// When the group entered its current state (offset expiry of Empty groups counts from it).
    pub(super) state_timestamp: Option<i64>,
    pub(super) protocol_type: Option<String>,
    pub(super) protocol_name: Option<String>,
    pub(super) generation_id: i32,
    pub(super) leader_id: Option<String>,
    /// Members in the order they were added (the first one leads when the leader leaves).
    pub(super) members: Vec<Member>,
    /// group.instance.id -> member id.
    pub(super) static_members: HashMap<String, String>,
    /// KIP-394: member ids handed out with MEMBER_ID_REQUIRED, with their expiry deadline.
    pub(super) pending_members: HashMap<String, i64>,
    /// Members of this generation that have not sent SyncGroup yet.
    pub(super) pending_sync_members: HashSet<String>,
    /// Topics the members subscribe to (consumer protocol), None when unknown.
    pub(super) subscribed_topics: Option<BTreeSet<String>>,
    /// A member joined during the initial delay, which extends it.
    pub(super) new_member_added: bool,
    pub(super) join_timer: Option<JoinTimer>,
    pub(super) sync_timer: Option<SyncTimer>,
    /// The last group metadata record appended and its offset, None if none (or after its
    /// tombstone).
    pub(super) persisted: Option<(i64, GroupValue)>,
}

impl ClassicGroup {
    /// A new, Empty group.
    pub fn new(id: &str, now: i64) -> ClassicGroup {
        ClassicGroup {
            id: id.to_string(),
            state: GroupState::Empty,
            previous_state: GroupState::Dead,
            state_timestamp: Some(now),
            protocol_type: None,
            protocol_name: None,
            generation_id: 0,
            leader_id: None,
            members: Vec::new(),
            static_members: HashMap::new(),
            pending_members: HashMap::new(),
            pending_sync_members: HashSet::new(),
            subscribed_topics: None,
            new_member_added: false,
            join_timer: None,
            sync_timer: None,
            persisted: None,
        }
    }

    /// A group as loaded from its last metadata record (at `offset` in the log): Stable with its
    /// members (who must heartbeat within their session timeout), or Empty without any.
    pub fn from_record(id: &str, value: &GroupValue, offset: i64, now: i64) -> ClassicGroup {
        let mut group = ClassicGroup::new(id, now);
        group.state = if value.members.is_empty() {
            GroupState::Empty
        } else {
            GroupState::Stable
        };
        group.state_timestamp =
            (value.current_state_timestamp != -1).then_some(value.current_state_timestamp);
        group.generation_id = value.generation;
        group.protocol_type =
            (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
        group.protocol_name = value.protocol.clone();
        group.leader_id = value.leader.clone();
        for m in &value.members {
            // A member loaded from the log supports the one protocol the group selected.
            let protocols = vec![Protocol {
                name: value.protocol.clone().unwrap_or_default(),
                metadata: m.subscription.clone(),
            }];
            if let Some(instance) = &m.group_instance_id {
                group
                    .static_members
                    .insert(instance.clone(), m.member_id.clone());
            }
            group.members.push(Member {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout_ms: if m.rebalance_timeout == -1 {
                    m.session_timeout
                } else {
                    m.rebalance_timeout
                },
                session_timeout_ms: m.session_timeout,
                protocol_type: value.protocol_type.clone(),
                protocols,
                assignment: m.assignment.clone(),
                awaiting_join: None,
                awaiting_sync: None,
                is_new: false,
                heartbeat_deadline: Some(now + m.session_timeout as i64),
            });
        }
        group.subscribed_topics = group.compute_subscribed_topics();
        group.persisted = Some((offset, value.clone()));
        group
    }

    /// The group id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The current state.
    pub fn state(&self) -> GroupState {
        self.state
    }

    /// The current generation.
    pub fn generation_id(&self) -> i32 {
        self.generation_id
    }

    /// The protocol type, None for a group that only stores offsets.
    pub fn protocol_type(&self) -> Option<&str> {
        self.protocol_type.as_deref()
    }

    /// The selected protocol of the current generation.
    pub fn protocol_name(&self) -> Option<&str> {
        self.protocol_name.as_deref()
    }

    /// The leader's member id.
    pub fn leader(&self) -> Option<&str> {
        self.leader_id.as_deref()
    }

    /// The members, in the order they were added.
    pub fn members(&self) -> &[Member] {
        &self.members
    }

    /// A member by id.
    pub fn member(&self, member_id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.member_id == member_id)
    }

    /// Whether a KIP-394 pending member with this id exists.
    pub fn is_pending_member(&self, member_id: &str) -> bool {
        self.pending_members.contains_key(member_id)
    }

    /// The last group metadata record written for this group.
    pub fn persisted(&self) -> Option<&GroupValue> {
        self.persisted.as_ref().map(|(_, v)| v)
    }

    /// The group's metadata record for a snapshot, at the offset it had in the log.
    pub fn snapshot(&self, out: &mut Vec<SnapshotRecord<GroupRecord>>) {
        if let Some((offset, value)) = &self.persisted {
            out.push(SnapshotRecord {
                offset: *offset,
                producer_id: -1,
                producer_epoch: -1,
                record: GroupRecord::Group {
                    group: self.id.clone(),
                    value: Some(value.clone()),
                },
            });
        }
    }

    fn member_mut(&mut self, member_id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.member_id == member_id)
    }

    fn has_member(&self, member_id: &str) -> bool {
        self.member(member_id).is_some()
    }

    fn is_leader(&self, member_id: &str) -> bool {
        self.leader_id.as_deref() == Some(member_id)
    }

    /// The longest rebalance timeout of any member (what a join phase may wait).
    pub fn rebalance_timeout_ms(&self) -> i64 {
        self.members
            .iter()
            .map(|m| m.rebalance_timeout_ms as i64)
            .max()
            .unwrap_or(0)
            .max(0)
    }

    fn num_awaiting_join(&self) -> usize {
        self.members.iter().filter(|m| m.is_awaiting_join()).count()
    }

    /// Every member and no pending member is waiting in JoinGroup.
    pub fn has_all_members_joined(&self) -> bool {
        self.num_awaiting_join() == self.members.len() && self.pending_members.is_empty()
    }

    /// Whether the members use the Kafka consumer protocol.
    pub fn uses_consumer_protocol(&self) -> bool {
        self.protocol_type.as_deref() == Some(CONSUMER_PROTOCOL_TYPE)
    }

    /// Kafka's `isSubscribedToTopic`: known subscriptions decide; unknown ones count as
    /// subscribed for consumer groups (so their offsets are never removed by mistake).
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match &self.subscribed_topics {
            Some(topics) => topics.contains(topic),
            None => self.uses_consumer_protocol(),
        }
    }

    fn transition_to(&mut self, target: GroupState, now: i64) {
        debug_assert!(
            target.valid_previous_states().contains(&self.state),
            "group {}: {:?} -> {:?} is not a valid transition",
            self.id,
            self.state,
            target
        );
        self.previous_state = self.state;
        self.state = target;
        self.state_timestamp = Some(now);
    }

    fn can_rebalance(&self) -> bool {
        GroupState::PreparingRebalance
            .valid_previous_states()
            .contains(&self.state)
    }

    fn count_supporting(&self, protocol: &str) -> usize {
        self.members
            .iter()
            .filter(|m| m.protocols.iter().any(|p| p.name == protocol))
            .count()
    }

    /// Kafka's `supportsProtocols`: an Empty group takes any non-empty type and protocol list;
    /// otherwise the type must match and one protocol must be supported by every member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[Protocol]) -> bool {
        if self.state == GroupState::Empty {
            !protocol_type.is_empty() && !protocols.is_empty()
        } else {
            self.protocol_type.as_deref() == Some(protocol_type)
                && protocols
                    .iter()
                    .any(|p| self.count_supporting(&p.name) == self.members.len())
        }
    }

    /// The protocol every member supports that most members prefer; ties go to the one that
    /// the earliest member voted for.
    pub fn select_protocol(&self) -> Option<String> {
        let candidates: BTreeSet<String> = self
            .members
            .iter()
            .flat_map(|m| m.protocols.iter().map(|p| p.name.clone()))
            .filter(|name| self.count_supporting(name) == self.members.len())
            .collect();
        let mut votes: Vec<(&str, usize)> = Vec::new();
        for member in &self.members {
            if let Some(choice) = member.vote(&candidates) {
                match votes.iter_mut().find(|(name, _)| *name == choice) {
                    Some((_, n)) => *n += 1,
                    None => votes.push((choice, 1)),
                }
            }
        }
        let mut best: Option<(&str, usize)> = None;
        for (name, n) in votes {
            if best.is_none_or(|(_, b)| n > b) {
                best = Some((name, n));
            }
        }
        best.map(|(name, _)| name.to_string())
    }

    fn compute_subscribed_topics(&self) -> Option<BTreeSet<String>> {
        if !self.uses_consumer_protocol() {
            return None;
        }
        if self.members.is_empty() {
            return Some(BTreeSet::new());
        }
        let protocol = self.protocol_name.as_deref()?;
        let mut all = BTreeSet::new();
        for m in &self.members {
            all.extend(subscribed_topics(&m.metadata(protocol))?);
        }
        Some(all)
    }

    fn generate_member_id(client_id: &str, instance_id: Option<&str>) -> String {
        format!("{}-{}", instance_id.unwrap_or(client_id), Uuid::new_v4())
    }

    /// Kafka's `validateMember`: a static member must be the current holder of its instance
    /// id (else FENCED_INSTANCE_ID), and the member must exist (else UNKNOWN_MEMBER_ID).
    pub fn validate_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
    ) -> Result<(), GroupError> {
        if let Some(instance) = instance_id {
            match self.static_members.get(instance) {
                None => return Err(GroupError::UnknownMemberId),
                Some(existing) if existing != member_id => {
                    tracing::info!(group = %self.id, member_id, instance, existing = %existing, "static member fenced");
                    return Err(GroupError::FencedInstanceId);
                }
                Some(_) => {}
            }
        }
        if !self.has_member(member_id) {
            return Err(GroupError::UnknownMemberId);
        }
        Ok(())
    }

    fn add(&mut self, member: Member) {
        if let Some(instance) = &member.group_instance_id {
            self.static_members
                .insert(instance.clone(), member.member_id.clone());
        }
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader_id.is_none() {
            self.leader_id = Some(member.member_id.clone());
        }
        self.pending_members.remove(&member.member_id);
        self.members.push(member);
    }

    /// Removes a member (or pending member); a leaving leader hands over to the first member.
    /// Parked requests are the caller's to answer first.
    fn remove(&mut self, member_id: &str) -> Option<Member> {
        let removed = self
            .members
            .iter()
            .position(|m| m.member_id == member_id)
            .map(|i| self.members.remove(i));
        if let Some(instance) = removed.as_ref().and_then(|m| m.group_instance_id.as_ref()) {
            self.static_members.remove(instance);
        }
        if self.is_leader(member_id) {
            self.leader_id = self.members.first().map(|m| m.member_id.clone());
        }
        self.pending_members.remove(member_id);
        self.pending_sync_members.remove(member_id);
        removed
    }

    fn reschedule_heartbeat(&mut self, member_id: &str, timeout_ms: i64, now: i64) {
        if let Some(m) = self.member_mut(member_id) {
            m.heartbeat_deadline = Some(now + timeout_ms);
        }
    }

    fn reschedule_session(&mut self, member_id: &str, now: i64) {
        if let Some(m) = self.member_mut(member_id) {
            m.heartbeat_deadline = Some(now + m.session_timeout_ms as i64);
        }
    }

    fn current_members(&self) -> Vec<JoinedMember> {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        self.members
            .iter()
            .map(|m| JoinedMember {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                metadata: m.metadata(&protocol),
            })
            .collect()
    }

    fn success(&self, member_id: &str, members: Vec<JoinedMember>) -> JoinOutcome {
        JoinOutcome {
            error: None,
            member_id: member_id.to_string(),
            generation_id: self.generation_id,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol_name.clone(),
            leader: self.leader_id.clone().unwrap_or_default(),
            skip_assignment: false,
            members,
        }
    }

    // ---- JoinGroup ----------------------------------------------------------------------

    /// Handles a JoinGroup (Kafka's `classicGroupJoinToClassicGroup` from the size check on).
    pub fn join(&mut self, req: JoinRequest, ctx: &mut Ctx) -> Waiter<JoinOutcome> {
        if !self.accept_joining_member(&req.member_id, ctx.config.max_size) {
            self.remove(&req.member_id);
            return Waiter::Ready(JoinOutcome::error(GroupError::GroupMaxSizeReached, ""));
        }
        if req.member_id.is_empty() {
            self.join_new_member(req, ctx)
        } else {
            self.join_existing_member(req, ctx)
        }
    }

    /// `group.max.size`: members already waiting in the join phase keep their place; others
    /// are admitted while the group (or, mid-rebalance, the set of rejoined members) is smaller.
    fn accept_joining_member(&self, member_id: &str, max_size: usize) -> bool {
        match self.state {
            GroupState::Empty | GroupState::Dead => true,
            GroupState::PreparingRebalance => {
                self.member(member_id).is_some_and(Member::is_awaiting_join)
                    || self.num_awaiting_join() < max_size
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                self.has_member(member_id) || self.members.len() < max_size
            }
        }
    }

    fn join_new_member(&mut self, req: JoinRequest, ctx: &mut Ctx) -> Waiter<JoinOutcome> {
        if self.state == GroupState::Dead {
            return Waiter::Ready(JoinOutcome::error(GroupError::CoordinatorNotAvailable, ""));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return Waiter::Ready(JoinOutcome::error(
                GroupError::InconsistentGroupProtocol,
                "",
            ));
        }
        let new_member_id =
            Self::generate_member_id(&req.client_id, req.group_instance_id.as_deref());
        match req.group_instance_id.clone() {
            Some(instance) => match self.static_members.get(&instance).cloned() {
                Some(old_member_id) => {
                    tracing::info!(group = %self.id, instance, old_member_id, new_member_id, state = ?self.state, "known static member rejoins with a new member id");
                    self.update_static_member_then_rebalance_or_complete_join(
                        req,
                        old_member_id,
                        new_member_id,
                        ctx,
                    )
                }
                None => self.add_member_then_rebalance_or_complete_join(req, new_member_id, ctx),
            },
            None if req.version >= 4 => {
                // KIP-394: hand out the id and wait for the member to come back with it, so
                // a client that never does leaves nothing behind but a pending id that expires.
                self.pending_members.insert(
                    new_member_id.clone(),
                    ctx.now + req.session_timeout_ms as i64,
                );
                Waiter::Ready(JoinOutcome::error(
                    GroupError::MemberIdRequired,
                    new_member_id,
                ))
            }
            None => self.add_member_then_rebalance_or_complete_join(req, new_member_id, ctx),
        }
    }

    fn join_existing_member(&mut self, req: JoinRequest, ctx: &mut Ctx) -> Waiter<JoinOutcome> {
        let member_id = req.member_id.clone();
        if self.state == GroupState::Dead {
            return Waiter::Ready(JoinOutcome::error(
                GroupError::CoordinatorNotAvailable,
                member_id,
            ));
        }
        if !self.supports_protocols(&req.protocol_type, &req.protocols) {
            return Waiter::Ready(JoinOutcome::error(
                GroupError::InconsistentGroupProtocol,
                member_id,
            ));
        }
        if self.is_pending_member(&member_id) {
            if req.group_instance_id.is_some() {
                // Pending ids are only handed to dynamic members; Kafka fails such a request
                // with an internal error.
                return Waiter::Ready(JoinOutcome::error(
                    GroupError::Unexpected(format!(
                        "JoinGroup with a group.instance.id for pending member {member_id}"
                    )),
                    "",
                ));
            }
            return self.add_member_then_rebalance_or_complete_join(req, member_id, ctx);
        }
        if let Err(e) = self.validate_member(&member_id, req.group_instance_id.as_deref()) {
            return Waiter::Ready(JoinOutcome::error(e, member_id));
        }
        let Some(member) = self.member(&member_id) else {
            return Waiter::Ready(JoinOutcome::error(GroupError::UnknownMemberId, member_id));
        };
        let unchanged = member.matches(&req.protocols);
        match self.state {
            GroupState::PreparingRebalance => {
                self.update_member_then_rebalance_or_complete_join(req, ctx)
            }
            GroupState::CompletingRebalance if unchanged => {
                // Same metadata: it probably missed the JoinGroup answer, so repeat it.
                let members = if self.is_leader(&member_id) {
                    self.current_members()
                } else {
                    Vec::new()
                };
                Waiter::Ready(self.success(&member_id, members))
            }
            GroupState::CompletingRebalance => {
                self.update_member_then_rebalance_or_complete_join(req, ctx)
            }
            GroupState::Stable if self.is_leader(&member_id) || !unchanged => {
                // A leader's JoinGroup always rebalances: it is how it reacts to changes that
                // the member metadata does not show (new partitions, for consumers).
                self.update_member_then_rebalance_or_complete_join(req, ctx)
            }
            GroupState::Stable => Waiter::Ready(self.success(&member_id, Vec::new())),
            GroupState::Empty | GroupState::Dead => {
                tracing::warn!(group = %self.id, member_id, state = ?self.state, "rejoining member in unexpected state");
                Waiter::Ready(JoinOutcome::error(GroupError::UnknownMemberId, member_id))
            }
        }
    }

    /// Parks the member's JoinGroup with its new protocols and timeouts, then rebalances or
    /// completes the join phase.
    fn update_member_then_rebalance_or_complete_join(
        &mut self,
        req: JoinRequest,
        ctx: &mut Ctx,
    ) -> Waiter<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if let Some(m) = self.member_mut(&req.member_id) {
            m.protocols = req.protocols;
            m.rebalance_timeout_ms = req.rebalance_timeout_ms;
            m.session_timeout_ms = req.session_timeout_ms;
            // A JoinGroup it already had parked is superseded (Kafka drops it unanswered).
            m.awaiting_join = Some(tx);
        }
        self.maybe_prepare_rebalance_or_complete_join(ctx);
        Waiter::Wait(rx)
    }

    fn add_member_then_rebalance_or_complete_join(
        &mut self,
        req: JoinRequest,
        member_id: String,
        ctx: &mut Ctx,
    ) -> Waiter<JoinOutcome> {
        let (tx, rx) = oneshot::channel();
        if self.state == GroupState::PreparingRebalance && self.previous_state == GroupState::Empty
        {
            self.new_member_added = true;
        }
        self.add(Member {
            member_id: member_id.clone(),
            group_instance_id: req.group_instance_id,
            client_id: req.client_id,
            client_host: req.client_host,
            rebalance_timeout_ms: req.rebalance_timeout_ms,
            session_timeout_ms: req.session_timeout_ms,
            protocol_type: req.protocol_type,
            protocols: req.protocols,
            assignment: Bytes::new(),
            awaiting_join: Some(tx),
            awaiting_sync: None,
            is_new: true,
            heartbeat_deadline: None,
        });
        // A parked new member cannot heartbeat and a disconnect goes unnoticed, so its join
        // times out on its own (Kafka's new-member join timeout); a live client retries.
        self.reschedule_heartbeat(&member_id, ctx.config.new_member_join_timeout_ms, ctx.now);
        self.maybe_prepare_rebalance_or_complete_join(ctx);
        Waiter::Wait(rx)
    }

    fn update_static_member_then_rebalance_or_complete_join(
        &mut self,
        req: JoinRequest,
        old_member_id: String,
        new_member_id: String,
        ctx: &mut Ctx,
    ) -> Waiter<JoinOutcome> {
        let instance_id = req.group_instance_id.clone().unwrap_or_default();
        let leader_before = self.leader_id.clone().unwrap_or_default();
        if !self.replace_static_member(&instance_id, &old_member_id, &new_member_id) {
            return Waiter::Ready(JoinOutcome::error(GroupError::UnknownMemberId, ""));
        }
        self.reschedule_session(&new_member_id, ctx.now);
        let (tx, rx) = oneshot::channel();
        let Some(member) = self.member_mut(&new_member_id) else {
            return Waiter::Ready(JoinOutcome::error(GroupError::UnknownMemberId, ""));
        };
        let old_protocols = std::mem::replace(&mut member.protocols, req.protocols);
        let old_rebalance_timeout_ms =
            std::mem::replace(&mut member.rebalance_timeout_ms, req.rebalance_timeout_ms);
        let old_session_timeout_ms =
            std::mem::replace(&mut member.session_timeout_ms, req.session_timeout_ms);
        member.awaiting_join = Some(tx);
        match self.state {
            GroupState::Stable => {
                if self.protocol_name == self.select_protocol() {
                    // KIP-345: same protocol, so no rebalance; persist the new member id and
                    // answer once it is durable.
                    tracing::info!(group = %self.id, instance_id, "static member rejoined a stable group without a rebalance");
                    ctx.records.push(self.metadata_record(None));
                    ctx.follow_ups.push(AfterPersist::StaticJoin {
                        new_member_id,
                        old_member_id,
                        instance_id,
                        leader_before,
                        old_protocols,
                        old_rebalance_timeout_ms,
                        old_session_timeout_ms,
                        supports_skip_assignment: req.version >= 9,
                    });
                } else {
                    self.maybe_prepare_rebalance_or_complete_join(ctx);
                }
            }
            GroupState::CompletingRebalance => {
                // The leader may already hold the old member id; only a new rebalance gives
                // the new id an assignment.
                self.prepare_rebalance(ctx);
            }
            GroupState::PreparingRebalance => self.maybe_complete_join_phase(ctx),
            GroupState::Empty | GroupState::Dead => {
                // A known static member implies members, so neither state can hold one.
                tracing::error!(group = %self.id, state = ?self.state, "static member rejoined a group without members");
            }
        }
        Waiter::Wait(rx)
    }

    /// Gives a static member a new member id, fencing the old one: its parked JoinGroup and
    /// SyncGroup are answered FENCED_INSTANCE_ID. The new member keeps everything else.
    fn replace_static_member(&mut self, instance_id: &str, old_id: &str, new_id: &str) -> bool {
        let Some(member) = self.member_mut(old_id) else {
            return false;
        };
        let mut fenced = JoinOutcome::error(GroupError::FencedInstanceId, old_id);
        fenced.members = Vec::new();
        member.complete_join(fenced);
        member.complete_sync(SyncOutcome::error(GroupError::FencedInstanceId));
        member.member_id = new_id.to_string();
        member.heartbeat_deadline = None;
        if self.is_leader(old_id) {
            self.leader_id = Some(new_id.to_string());
        }
        if self.pending_sync_members.remove(old_id) {
            self.pending_sync_members.insert(new_id.to_string());
        }
        self.static_members
            .insert(instance_id.to_string(), new_id.to_string());
        true
    }

    /// Starts a rebalance whatever the state allows (a loaded group over `group.max.size`).
    pub fn force_rebalance(&mut self, ctx: &mut Ctx) {
        if self.can_rebalance() {
            self.prepare_rebalance(ctx);
        }
    }

    fn maybe_prepare_rebalance_or_complete_join(&mut self, ctx: &mut Ctx) {
        if self.can_rebalance() {
            self.prepare_rebalance(ctx);
        } else {
            self.maybe_complete_join_phase(ctx);
        }
    }

    /// Starts a join phase: parked SyncGroups are told to rejoin; an Empty group waits the
    /// initial delay, others complete as soon as everyone rejoined or at the rebalance timeout.
    fn prepare_rebalance(&mut self, ctx: &mut Ctx) {
        if self.state == GroupState::CompletingRebalance {
            self.reset_and_propagate_assignment_with_error(GroupError::RebalanceInProgress, ctx);
        }
        self.remove_sync_expiration();
        let initial = self.state == GroupState::Empty;
        if initial {
            let delay = ctx.config.initial_rebalance_delay_ms;
            let remaining = (self.rebalance_timeout_ms() - delay).max(0);
            self.join_timer = Some(JoinTimer {
                deadline: ctx.now + delay,
                kind: JoinTimerKind::Initial { delay, remaining },
            });
        }
        self.transition_to(GroupState::PreparingRebalance, ctx.now);
        tracing::info!(group = %self.id, generation = self.generation_id, "preparing to rebalance");
        if !initial {
            self.maybe_complete_join_else_schedule(ctx);
        }
    }

    fn maybe_complete_join_else_schedule(&mut self, ctx: &mut Ctx) {
        if self.has_all_members_joined() {
            self.complete_join(ctx);
        } else {
            self.join_timer = Some(JoinTimer {
                deadline: ctx.now + self.rebalance_timeout_ms(),
                kind: JoinTimerKind::Rebalance,
            });
        }
    }

    /// Completes the join phase early when every member rejoined, except during the initial
    /// delay (which exists precisely to let more members arrive).
    fn maybe_complete_join_phase(&mut self, ctx: &mut Ctx) {
        if self.state != GroupState::PreparingRebalance
            || self.previous_state == GroupState::Empty
            || !self.has_all_members_joined()
        {
            return;
        }
        self.complete_join(ctx);
    }

    /// Ends the join phase: dynamic members that did not rejoin are removed, a new generation
    /// starts (Empty if nobody is left), and every parked JoinGroup is answered.
    fn complete_join(&mut self, ctx: &mut Ctx) {
        self.join_timer = None;
        let gone: Vec<String> = self
            .members
            .iter()
            .filter(|m| !m.is_awaiting_join() && m.group_instance_id.is_none())
            .map(|m| m.member_id.clone())
            .collect();
        for id in &gone {
            self.remove(id);
        }
        if !gone.is_empty() {
            tracing::info!(group = %self.id, removed = ?gone, "removed members that did not rejoin");
        }
        if self.state == GroupState::Dead {
            return;
        }
        if !self.maybe_elect_new_joined_leader() && !self.members.is_empty() {
            // Only static members that did not rejoin are left: wait another rebalance
            // timeout, until their sessions expire or they come back.
            tracing::error!(group = %self.id, "could not complete the rebalance because no members rejoined");
            self.join_timer = Some(JoinTimer {
                deadline: ctx.now + self.rebalance_timeout_ms(),
                kind: JoinTimerKind::Rebalance,
            });
            return;
        }
        self.init_next_generation(ctx.now);
        if self.state == GroupState::Empty {
            tracing::info!(group = %self.id, generation = self.generation_id, "group is now empty");
            ctx.records.push(self.metadata_record(None));
            return;
        }
        tracing::info!(group = %self.id, generation = self.generation_id, members = self.members.len(), "stabilized group");
        let all = self.current_members();
        let leader = self.leader_id.clone().unwrap_or_default();
        let ids: Vec<String> = self.members.iter().map(|m| m.member_id.clone()).collect();
        for id in ids {
            let members = if id == leader {
                all.clone()
            } else {
                Vec::new()
            };
            let outcome = self.success(&id, members);
            if let Some(m) = self.member_mut(&id) {
                m.complete_join(outcome);
                m.heartbeat_deadline = Some(ctx.now + m.session_timeout_ms as i64);
                m.is_new = false;
            }
            self.pending_sync_members.insert(id);
        }
        self.sync_timer = Some(SyncTimer {
            deadline: ctx.now + self.rebalance_timeout_ms(),
            generation: self.generation_id,
        });
    }

    /// Keeps the leader if it rejoined, else picks the first member that did; false when no
    /// member rejoined at all.
    fn maybe_elect_new_joined_leader(&mut self) -> bool {
        let Some(leader) = self.leader_id.clone() else {
            return false;
        };
        if self.member(&leader).is_some_and(Member::is_awaiting_join) {
            return true;
        }
        match self.members.iter().find(|m| m.is_awaiting_join()) {
            Some(m) => {
                tracing::info!(group = %self.id, old = %leader, new = %m.member_id, "leader did not rejoin; elected a new one");
                self.leader_id = Some(m.member_id.clone());
                true
            }
            None => false,
        }
    }

    fn init_next_generation(&mut self, now: i64) {
        self.generation_id += 1;
        if self.members.is_empty() {
            self.protocol_name = None;
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::Empty, now);
        } else {
            self.protocol_name = self.select_protocol();
            self.subscribed_topics = self.compute_subscribed_topics();
            self.transition_to(GroupState::CompletingRebalance, now);
        }
        self.pending_sync_members.clear();
    }

    fn remove_sync_expiration(&mut self) {
        self.pending_sync_members.clear();
        self.sync_timer = None;
    }

    fn reset_and_propagate_assignment_with_error(&mut self, error: GroupError, ctx: &Ctx) {
        for m in &mut self.members {
            m.assignment = Bytes::new();
        }
        self.propagate_assignment(Some(error), ctx.now);
    }

    /// Answers every parked SyncGroup; a member's session restarts when it gets its answer.
    fn propagate_assignment(&mut self, error: Option<GroupError>, now: i64) {
        let (protocol_type, protocol_name) = if error.is_none() {
            (self.protocol_type.clone(), self.protocol_name.clone())
        } else {
            (None, None)
        };
        for m in &mut self.members {
            let outcome = SyncOutcome {
                error: error.clone(),
                protocol_type: protocol_type.clone(),
                protocol_name: protocol_name.clone(),
                assignment: m.assignment.clone(),
            };
            if m.complete_sync(outcome) {
                m.heartbeat_deadline = Some(now + m.session_timeout_ms as i64);
            }
        }
    }

    // ---- SyncGroup ----------------------------------------------------------------------

    /// Handles a SyncGroup (Kafka's `classicGroupSyncToClassicGroup`); the coordinator has
    /// already answered UNKNOWN_MEMBER_ID for an unknown or Empty group.
    pub fn sync(&mut self, req: SyncRequest, ctx: &mut Ctx) -> Waiter<SyncOutcome> {
        if let Err(e) = self.validate_sync(&req) {
            return Waiter::Ready(SyncOutcome::error(e));
        }
        match self.state {
            GroupState::PreparingRebalance => {
                Waiter::Ready(SyncOutcome::error(GroupError::RebalanceInProgress))
            }
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(m) = self.member_mut(&req.member_id) {
                    m.awaiting_sync = Some(tx);
                }
                self.remove_pending_sync_member(&req.member_id);
                if self.is_leader(&req.member_id) {
                    tracing::info!(group = %self.id, generation = self.generation_id, members = self.members.len(), "assignment received from the leader");
                    let mut assignment: HashMap<String, Bytes> =
                        req.assignments.into_iter().collect();
                    for m in &self.members {
                        assignment.entry(m.member_id.clone()).or_default();
                    }
                    ctx.records.push(self.metadata_record(Some(&assignment)));
                    ctx.follow_ups.push(AfterPersist::Assignment {
                        generation: self.generation_id,
                        assignment,
                    });
                }
                Waiter::Wait(rx)
            }
            GroupState::Stable => {
                self.remove_pending_sync_member(&req.member_id);
                let assignment = self
                    .member(&req.member_id)
                    .map(|m| m.assignment.clone())
                    .unwrap_or_default();
                Waiter::Ready(SyncOutcome {
                    error: None,
                    protocol_type: self.protocol_type.clone(),
                    protocol_name: self.protocol_name.clone(),
                    assignment,
                })
            }
            GroupState::Empty | GroupState::Dead => {
                Waiter::Ready(SyncOutcome::error(GroupError::UnknownMemberId))
            }
        }
    }

    fn validate_sync(&self, req: &SyncRequest) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        self.validate_member(&req.member_id, req.group_instance_id.as_deref())?;
        if req.generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration {
                got: req.generation_id,
                current: self.generation_id,
            });
        }
        let inconsistent = |asked: &Option<String>, have: &Option<String>| matches!((asked, have), (Some(a), Some(h)) if a != h);
        if inconsistent(&req.protocol_type, &self.protocol_type)
            || inconsistent(&req.protocol_name, &self.protocol_name)
        {
            return Err(GroupError::InconsistentGroupProtocol);
        }
        Ok(())
    }

    fn remove_pending_sync_member(&mut self, member_id: &str) {
        self.pending_sync_members.remove(member_id);
        match self.state {
            GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => {
                self.sync_timer = None;
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                if self.pending_sync_members.is_empty() {
                    self.sync_timer = None;
                }
            }
        }
    }

    // ---- Heartbeat, LeaveGroup ----------------------------------------------------------

    /// Handles a Heartbeat; the coordinator answered UNKNOWN_MEMBER_ID for an unknown group.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation_id: i32,
        ctx: &mut Ctx,
    ) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        self.validate_member(member_id, instance_id)?;
        if generation_id != self.generation_id {
            return Err(GroupError::IllegalGeneration {
                got: generation_id,
                current: self.generation_id,
            });
        }
        match self.state {
            GroupState::Empty | GroupState::Dead => Err(GroupError::UnknownMemberId),
            GroupState::PreparingRebalance => {
                self.reschedule_session(member_id, ctx.now);
                Err(GroupError::RebalanceInProgress)
            }
            GroupState::CompletingRebalance | GroupState::Stable => {
                // Consumers may heartbeat between JoinGroup and SyncGroup: a normal heartbeat.
                self.reschedule_session(member_id, ctx.now);
                Ok(())
            }
        }
    }

    /// Handles a LeaveGroup (batched from v3); Err is a group-level error.
    pub fn leave(
        &mut self,
        leaving: &[LeaveMember],
        ctx: &mut Ctx,
    ) -> Result<Vec<LeaveResult>, GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        let mut results = Vec::with_capacity(leaving.len());
        for l in leaving {
            let error = if l.member_id.is_empty() {
                // Removal of a static member by instance id alone (admin tools do this).
                match l
                    .group_instance_id
                    .as_ref()
                    .and_then(|i| self.static_members.get(i).cloned())
                {
                    Some(member_id) => {
                        self.remove_current_member(&member_id);
                        None
                    }
                    None => Some(GroupError::UnknownMemberId),
                }
            } else if self.is_pending_member(&l.member_id) {
                self.remove(&l.member_id);
                tracing::info!(group = %self.id, member_id = %l.member_id, "pending member left");
                None
            } else {
                match self.validate_member(&l.member_id, l.group_instance_id.as_deref()) {
                    Ok(()) => {
                        self.remove_current_member(&l.member_id);
                        None
                    }
                    Err(e) => Some(e),
                }
            };
            results.push(LeaveResult {
                member_id: l.member_id.clone(),
                group_instance_id: l.group_instance_id.clone(),
                error,
            });
        }
        if results.iter().any(|r| r.error.is_none()) {
            match self.state {
                GroupState::Stable | GroupState::CompletingRebalance => {
                    self.maybe_prepare_rebalance_or_complete_join(ctx)
                }
                GroupState::PreparingRebalance => self.maybe_complete_join_phase(ctx),
                GroupState::Empty | GroupState::Dead => {}
            }
        }
        Ok(results)
    }

    fn remove_current_member(&mut self, member_id: &str) {
        tracing::info!(group = %self.id, member_id, "member left the group");
        if let Some(m) = self.member_mut(member_id) {
            // A new member may still have a JoinGroup parked: tell it to retry.
            m.complete_join(JoinOutcome::error(GroupError::UnknownMemberId, ""));
        }
        self.remove(member_id);
    }

    // ---- Timers -------------------------------------------------------------------------

    /// The earliest deadline of any timer of this group, if one runs.
    pub fn next_deadline(&self) -> Option<i64> {
        let members = self.members.iter().filter_map(|m| m.heartbeat_deadline);
        let pending = self.pending_members.values().copied();
        let timers = self
            .join_timer
            .map(|t| t.deadline)
            .into_iter()
            .chain(self.sync_timer.map(|t| t.deadline));
        members.chain(pending).chain(timers).min()
    }

    /// Fires every timer due at `ctx.now`, earliest first. Timers a firing schedules wait for
    /// the next tick, so a zero timeout cannot spin.
    pub fn tick(&mut self, ctx: &mut Ctx) {
        enum Due {
            Join,
            Sync,
            Member(String),
            Pending(String),
        }
        let now = ctx.now;
        let mut due: Vec<(i64, Due)> = Vec::new();
        if let Some(t) = self.join_timer.filter(|t| t.deadline <= now) {
            due.push((t.deadline, Due::Join));
        }
        if let Some(t) = self.sync_timer.filter(|t| t.deadline <= now) {
            due.push((t.deadline, Due::Sync));
        }
        for m in &self.members {
            if let Some(d) = m.heartbeat_deadline.filter(|d| *d <= now) {
                due.push((d, Due::Member(m.member_id.clone())));
            }
        }
        for (id, d) in &self.pending_members {
            if *d <= now {
                due.push((*d, Due::Pending(id.clone())));
            }
        }
        due.sort_by_key(|(d, _)| *d);
        for (deadline, what) in due {
            match what {
                Due::Join => {
                    // An earlier firing may have cancelled or replaced it.
                    let Some(timer) = self.join_timer.filter(|t| t.deadline == deadline) else {
                        continue;
                    };
                    self.join_timer = None;
                    match timer.kind {
                        JoinTimerKind::Initial { delay, remaining } => {
                            self.try_complete_initial_rebalance_else_schedule(delay, remaining, ctx)
                        }
                        JoinTimerKind::Rebalance => self.complete_join(ctx),
                    }
                }
                Due::Sync => {
                    let Some(timer) = self.sync_timer.filter(|t| t.deadline == deadline) else {
                        continue;
                    };
                    self.sync_timer = None;
                    self.expire_pending_sync(timer.generation, ctx);
                }
                Due::Member(id) => {
                    let Some(m) = self
                        .member_mut(&id)
                        .filter(|m| m.heartbeat_deadline == Some(deadline))
                    else {
                        continue;
                    };
                    m.heartbeat_deadline = None;
                    self.expire_member_heartbeat(&id, ctx);
                }
                Due::Pending(id) => {
                    if self.pending_members.get(&id) == Some(&deadline) {
                        self.expire_member_heartbeat(&id, ctx);
                    }
                }
            }
        }
    }

    fn try_complete_initial_rebalance_else_schedule(
        &mut self,
        delay: i64,
        remaining: i64,
        ctx: &mut Ctx,
    ) {
        if self.new_member_added && remaining != 0 {
            // Members keep arriving: wait again, never longer than the rebalance timeout.
            self.new_member_added = false;
            let new_delay = ctx.config.initial_rebalance_delay_ms.min(remaining);
            let new_remaining = (remaining - delay).max(0);
            self.join_timer = Some(JoinTimer {
                deadline: ctx.now + new_delay,
                kind: JoinTimerKind::Initial {
                    delay: new_delay,
                    remaining: new_remaining,
                },
            });
        } else {
            self.complete_join(ctx);
        }
    }

    fn expire_pending_sync(&mut self, generation: i32, ctx: &mut Ctx) {
        if generation != self.generation_id {
            return;
        }
        match self.state {
            GroupState::Dead | GroupState::Empty | GroupState::PreparingRebalance => {}
            GroupState::CompletingRebalance | GroupState::Stable => {
                if self.pending_sync_members.is_empty() {
                    return;
                }
                let late: Vec<String> = self.pending_sync_members.iter().cloned().collect();
                tracing::info!(group = %self.id, removed = ?late, "removed members that did not send SyncGroup in time");
                for id in &late {
                    self.remove(id);
                }
                self.prepare_rebalance(ctx);
            }
        }
    }

    fn expire_member_heartbeat(&mut self, member_id: &str, ctx: &mut Ctx) {
        if self.state == GroupState::Dead {
            return;
        }
        if self.is_pending_member(member_id) {
            tracing::info!(group = %self.id, member_id, "pending member expired");
            self.remove(member_id);
            if self.state == GroupState::PreparingRebalance && self.has_all_members_joined() {
                self.complete_join(ctx);
            }
            return;
        }
        let Some(member) = self.member(member_id) else {
            return;
        };
        if member.has_satisfied_heartbeat() {
            return;
        }
        tracing::info!(group = %self.id, member_id, "member session expired; removing it");
        if let Some(m) = self.member_mut(member_id) {
            m.complete_join(JoinOutcome::error(GroupError::UnknownMemberId, ""));
        }
        self.remove(member_id);
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                self.maybe_prepare_rebalance_or_complete_join(ctx)
            }
            GroupState::PreparingRebalance if self.has_all_members_joined() => {
                self.complete_join(ctx)
            }
            _ => {}
        }
    }

    // ---- Durability follow-ups ----------------------------------------------------------

    /// Runs the follow-ups of records that are now durable (`result` Ok) or failed to be
    /// written (Err: the error the waiting clients get).
    pub fn after_persist(
        &mut self,
        actions: Vec<AfterPersist>,
        result: Result<(), GroupError>,
        ctx: &mut Ctx,
    ) {
        for action in actions {
            match action {
                AfterPersist::Assignment {
                    generation,
                    assignment,
                } => {
                    // Another member may have joined meanwhile: only act on the same round.
                    if self.state != GroupState::CompletingRebalance
                        || self.generation_id != generation
                    {
                        continue;
                    }
                    match &result {
                        Ok(()) => {
                            for m in &mut self.members {
                                m.assignment =
                                    assignment.get(&m.member_id).cloned().unwrap_or_default();
                            }
                            self.propagate_assignment(None, ctx.now);
                            self.transition_to(GroupState::Stable, ctx.now);
                        }
                        Err(e) => {
                            self.reset_and_propagate_assignment_with_error(e.clone(), ctx);
                            self.maybe_prepare_rebalance_or_complete_join(ctx);
                        }
                    }
                }
                AfterPersist::StaticJoin {
                    new_member_id,
                    old_member_id,
                    instance_id,
                    leader_before,
                    old_protocols,
                    old_rebalance_timeout_ms,
                    old_session_timeout_ms,
                    supports_skip_assignment,
                } => match &result {
                    Ok(()) => {
                        let is_leader = self.is_leader(&new_member_id);
                        let outcome = if supports_skip_assignment {
                            let mut o = self.success(
                                &new_member_id,
                                if is_leader {
                                    self.current_members()
                                } else {
                                    Vec::new()
                                },
                            );
                            o.skip_assignment = is_leader;
                            o
                        } else {
                            // Before v9 the old leader id is named, so a rejoining static
                            // leader does not recompute an assignment it has no input for.
                            let mut o = self.success(&new_member_id, Vec::new());
                            o.leader = leader_before;
                            o
                        };
                        if let Some(m) = self.member_mut(&new_member_id) {
                            m.complete_join(outcome);
                        }
                    }
                    Err(e) => {
                        tracing::warn!(group = %self.id, instance_id, error = %e, "persisting a static member failed; reverting it");
                        let waiter = self.member_mut(&new_member_id).and_then(|m| {
                            m.protocols = old_protocols;
                            m.rebalance_timeout_ms = old_rebalance_timeout_ms;
                            m.session_timeout_ms = old_session_timeout_ms;
                            m.awaiting_join.take()
                        });
                        if self.replace_static_member(&instance_id, &new_member_id, &old_member_id)
                        {
                            self.reschedule_session(&old_member_id, ctx.now);
                        }
                        if let Some(tx) = waiter {
                            let mut o = JoinOutcome::error(e.clone(), "");
                            o.generation_id = self.generation_id;
                            o.protocol_type = self.protocol_type.clone();
                            o.protocol_name = self.protocol_name.clone();
                            o.leader = leader_before;
                            let _ = tx.send(o);
                        }
                    }
                },
            }
        }
    }

    /// Answers every parked request with NOT_COORDINATOR (broker shutdown), as Kafka does when
    /// it unloads a group.
    pub fn unload(&mut self) {
        for m in &mut self.members {
            m.complete_join(JoinOutcome::error(
                GroupError::NotCoordinator,
                m.member_id.clone(),
            ));
            m.complete_sync(SyncOutcome::error(GroupError::NotCoordinator));
        }
    }

    /// Marks the group removed (DeleteGroups, expiry): parked requests are told to retry.
    pub fn mark_dead(&mut self, now: i64) {
        for m in &mut self.members {
            m.complete_join(JoinOutcome::error(
                GroupError::CoordinatorNotAvailable,
                m.member_id.clone(),
            ));
            m.complete_sync(SyncOutcome::error(GroupError::CoordinatorNotAvailable));
        }
        self.previous_state = self.state;
        self.state = GroupState::Dead;
        self.state_timestamp = Some(now);
        self.join_timer = None;
        self.sync_timer = None;
    }

    // ---- Records ------------------------------------------------------------------------

    /// The group's metadata record, with `assignment` (a leader's new one) or the members'
    /// current assignments.
    pub fn metadata_record(&self, assignment: Option<&HashMap<String, Bytes>>) -> GroupRecord {
        let protocol = self.protocol_name.clone().unwrap_or_default();
        let members = self
            .members
            .iter()
            .map(|m| MemberValue {
                member_id: m.member_id.clone(),
                group_instance_id: m.group_instance_id.clone(),
                client_id: m.client_id.clone(),
                client_host: m.client_host.clone(),
                rebalance_timeout: m.rebalance_timeout_ms,
                session_timeout: m.session_timeout_ms,
                subscription: m.metadata(&protocol),
                assignment: assignment
                    .and_then(|a| a.get(&m.member_id).cloned())
                    .unwrap_or_else(|| m.assignment.clone()),
            })
            .collect();
        GroupRecord::Group {
            group: self.id.clone(),
            value: Some(GroupValue {
                protocol_type: self.protocol_type.clone().unwrap_or_default(),
                generation: self.generation_id,
                protocol: self.protocol_name.clone(),
                leader: self.leader_id.clone(),
                current_state_timestamp: self.state_timestamp.unwrap_or(-1),
                members,
            }),
        }
    }

    /// Updates what the group knows was written: its metadata records among one operation's
    /// records, appended at consecutive offsets from `base_offset` (offset records are the
    /// offset store's).
    pub fn records_appended(&mut self, records: &[GroupRecord], base_offset: i64) {
        for (i, record) in records.iter().enumerate() {
            if let GroupRecord::Group { value, .. } = record {
                self.persisted = value.clone().map(|v| (base_offset + i as i64, v));
            }
        }
    }

    // ---- Offsets: the classic group's rules (Kafka's `ClassicGroup` half of `Group`) -------

    /// Kafka's `ClassicGroup.validateOffsetCommit` (non-transactional).
    pub fn validate_offset_commit(&self, author: &CommitAuthor) -> Result<(), GroupError> {
        if self.state == GroupState::Dead {
            return Err(GroupError::CoordinatorNotAvailable);
        }
        if author.generation_id < 0 && self.state == GroupState::Empty {
            // The admin client, or a consumer with manual assignment: allowed while no member
            // manages the group.
            return Ok(());
        }
        if author.generation_id >= 0
            || !author.member_id.is_empty()
            || author.group_instance_id.is_some()
        {
            self.validate_member(&author.member_id, author.group_instance_id.as_deref())?;
            if author.generation_id != self.generation_id {
                return Err(GroupError::IllegalGeneration {
                    got: author.generation_id,
                    current: self.generation_id,
                });
            }
        } else if self.state != GroupState::Empty {
            return Err(GroupError::UnknownMemberId);
        }
        if self.state == GroupState::CompletingRebalance {
            // The member has its new generation from JoinGroup but no assignment yet.
            return Err(GroupError::RebalanceInProgress);
        }
        Ok(())
    }

    /// A commit keeps the member's session alive, as a heartbeat would.
    pub fn on_offset_commit(&mut self, author: &CommitAuthor, now: i64) {
        if matches!(
            self.state,
            GroupState::Stable | GroupState::PreparingRebalance
        ) {
            if let Some(m) = self
                .members
                .iter_mut()
                .find(|m| m.member_id == author.member_id)
            {
                m.heartbeat_deadline = Some(now + m.session_timeout_ms as i64);
            }
        }
    }

    /// Kafka's `ClassicGroup.validateOffsetDelete`.
    pub fn validate_offset_delete(&self) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => Err(GroupError::GroupIdNotFound(self.id.clone())),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance
                if !self.uses_consumer_protocol() =>
            {
                Err(GroupError::NonEmptyGroup)
            }
            _ => Ok(()),
        }
    }

    /// Kafka's `validateDeleteGroup`: only a group without members can be deleted.
    pub fn validate_delete_group(&self) -> Result<(), GroupError> {
        match self.state {
            GroupState::Dead => Err(GroupError::GroupIdNotFound(self.id.clone())),
            GroupState::Stable
            | GroupState::PreparingRebalance
            | GroupState::CompletingRebalance => Err(GroupError::NonEmptyGroup),
            GroupState::Empty => Ok(()),
        }
    }

    /// Kafka's `ClassicGroup.offsetExpirationCondition`: from when its offsets count their
    /// retention, None while they cannot expire.
    pub fn offset_expiration_condition(&self) -> Option<ExpirationBase> {
        if self.protocol_type.is_none() {
            // A group that only stores offsets: each one expires on its own.
            Some(ExpirationBase::CommitTimestamp)
        } else if self.state == GroupState::Empty {
            Some(ExpirationBase::StateTimestamp(self.state_timestamp))
        } else if self.uses_consumer_protocol()
            && self.subscribed_topics.is_some()
            && self.state == GroupState::Stable
        {
            Some(ExpirationBase::CommitTimestamp)
        } else {
            None
        }
    }
}
