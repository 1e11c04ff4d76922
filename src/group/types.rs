//! Group types (Kafka's `Group` interface and `GroupType`): what the coordinator and the offset
//! store need to know of a group whatever protocol its members speak. Only the classic protocol
//! exists today; KIP-848 consumer groups and share groups will be further variants, with their
//! own state machines, behind the same questions.

use super::classic::ClassicGroup;
use super::offsets::{CommitAuthor, ExpirationBase};
use super::records::GroupRecord;
use super::{GroupError, GroupState};

/// Kafka's `Group.GroupType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupType {
    /// The classic (JoinGroup/SyncGroup) protocol.
    Classic,
}

impl GroupType {
    /// The name ListGroups reports and filters on.
    pub fn name(self) -> &'static str {
        match self {
            GroupType::Classic => "classic",
        }
    }
}

/// A group of any type.
#[derive(Debug)]
pub enum Group {
    /// A classic group.
    Classic(ClassicGroup),
}

impl Group {
    /// Its type.
    pub fn group_type(&self) -> GroupType {
        match self {
            Group::Classic(_) => GroupType::Classic,
        }
    }

    /// Its id.
    pub fn group_id(&self) -> &str {
        match self {
            Group::Classic(g) => g.id(),
        }
    }

    /// Its state.
    pub fn state(&self) -> GroupState {
        match self {
            Group::Classic(g) => g.state(),
        }
    }

    /// The classic group, if it is one.
    pub fn as_classic(&self) -> Option<&ClassicGroup> {
        match self {
            Group::Classic(g) => Some(g),
        }
    }

    /// The classic group, if it is one.
    pub fn as_classic_mut(&mut self) -> Option<&mut ClassicGroup> {
        match self {
            Group::Classic(g) => Some(g),
        }
    }

    /// Kafka's `validateOffsetCommit`: whether this author may commit now.
    pub fn validate_offset_commit(&self, author: &CommitAuthor) -> Result<(), GroupError> {
        match self {
            Group::Classic(g) => g.validate_offset_commit(author),
        }
    }

    /// What a commit does to the group itself (a classic member's session is kept alive).
    pub fn on_offset_commit(&mut self, author: &CommitAuthor, now: i64) {
        match self {
            Group::Classic(g) => g.on_offset_commit(author, now),
        }
    }

    /// Kafka's `validateOffsetDelete`.
    pub fn validate_offset_delete(&self) -> Result<(), GroupError> {
        match self {
            Group::Classic(g) => g.validate_offset_delete(),
        }
    }

    /// Kafka's `validateDeleteGroup`.
    pub fn validate_delete_group(&self) -> Result<(), GroupError> {
        match self {
            Group::Classic(g) => g.validate_delete_group(),
        }
    }

    /// Kafka's `isSubscribedToTopic`.
    pub fn is_subscribed_to_topic(&self, topic: &str) -> bool {
        match self {
            Group::Classic(g) => g.is_subscribed_to_topic(topic),
        }
    }

    /// Kafka's `offsetExpirationCondition`.
    pub fn offset_expiration_condition(&self) -> Option<ExpirationBase> {
        match self {
            Group::Classic(g) => g.offset_expiration_condition(),
        }
    }

    /// Kafka's `isEmpty`: no members.
    pub fn is_empty(&self) -> bool {
        self.state() == GroupState::Empty
    }

    /// Kafka's `createGroupTombstoneRecords`: the record that deletes the group.
    pub fn tombstone(&self) -> GroupRecord {
        GroupRecord::Group {
            group: self.group_id().to_string(),
            value: None,
        }
    }
}
