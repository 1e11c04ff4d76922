//! One member of a classic group (Kafka's `ClassicGroupMember`), the replies it may be waiting
//! for, and the consumer-protocol subscription parser used for offset expiry and OffsetDelete.

use std::collections::BTreeSet;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::{JoinOutcome, SyncOutcome};

/// One protocol a member supports: the assignor name and its opaque metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Protocol {
    /// Protocol (assignor) name, e.g. "range" or "cooperative-sticky".
    pub name: String,
    /// The member's metadata for it (for "consumer", a ConsumerProtocolSubscription).
    pub metadata: Bytes,
}

/// A member of a classic group.
#[derive(Debug)]
pub struct Member {
    /// Assigned by the coordinator: `<client.id or group.instance.id>-<uuid>`.
    pub member_id: String,
    /// `group.instance.id` of a static member (KIP-345).
    pub group_instance_id: Option<String>,
    /// The client id of the request that added the member.
    pub client_id: String,
    /// The client's address as Kafka prints it ("/127.0.0.1").
    pub client_host: String,
    /// How long a rebalance may wait for this member to rejoin.
    pub rebalance_timeout_ms: i32,
    /// How long the member may go without a heartbeat.
    pub session_timeout_ms: i32,
    /// The protocol type it joined with ("consumer" for consumers).
    pub protocol_type: String,
    /// Supported protocols in the member's order of preference.
    pub protocols: Vec<Protocol>,
    /// Its assignment in the current generation (empty until SyncGroup).
    pub assignment: Bytes,
    /// A parked JoinGroup, answered when the join phase completes.
    pub awaiting_join: Option<oneshot::Sender<JoinOutcome>>,
    /// A parked SyncGroup, answered when the leader's assignment is stored.
    pub awaiting_sync: Option<oneshot::Sender<SyncOutcome>>,
    /// Joined in the current rebalance and not yet through a completed join phase; such a
    /// member expires on its join timeout even while waiting.
    pub is_new: bool,
    /// When its session (or, while new, its join) times out; None when no timer runs.
    pub heartbeat_deadline: Option<i64>,
}

impl Member {
    /// Whether a JoinGroup of this member is parked.
    pub fn is_awaiting_join(&self) -> bool {
        self.awaiting_join.is_some()
    }

    /// Whether a SyncGroup of this member is parked.
    pub fn is_awaiting_sync(&self) -> bool {
        self.awaiting_sync.is_some()
    }

    /// Kafka's `hasSatisfiedHeartbeat`: a parked member counts as alive, except a new one.
    pub fn has_satisfied_heartbeat(&self) -> bool {
        !self.is_new && (self.is_awaiting_join() || self.is_awaiting_sync())
    }

    /// The member's metadata for `protocol`, empty if it does not support it.
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols
            .iter()
            .find(|p| p.name == protocol)
            .map(|p| p.metadata.clone())
            .unwrap_or_default()
    }

    /// Whether a JoinGroup carries exactly the protocols (names, metadata, order) the member has.
    pub fn matches(&self, protocols: &[Protocol]) -> bool {
        self.protocols == protocols
    }

    /// The member's first protocol (in its preference order) among `candidates`.
    pub fn vote(&self, candidates: &BTreeSet<String>) -> Option<&str> {
        self.protocols
            .iter()
            .find(|p| candidates.contains(&p.name))
            .map(|p| p.name.as_str())
    }

    /// Answers a parked JoinGroup, if any; true when there was one.
    pub fn complete_join(&mut self, outcome: JoinOutcome) -> bool {
        match self.awaiting_join.take() {
            Some(tx) => {
                // The receiver is gone only if the connection closed; nothing to tell then.
                let _ = tx.send(outcome);
                true
            }
            None => false,
        }
    }

    /// Answers a parked SyncGroup, if any; true when there was one.
    pub fn complete_sync(&mut self, outcome: SyncOutcome) -> bool {
        match self.awaiting_sync.take() {
            Some(tx) => {
                let _ = tx.send(outcome);
                true
            }
            None => false,
        }
    }
}

/// The topics of a consumer-protocol subscription, read with the v0 layout every version
/// starts with (version i16, then an array of i16-length strings), as Kafka's coordinator does;
/// None when the bytes are not a subscription.
pub fn subscribed_topics(metadata: &[u8]) -> Option<BTreeSet<String>> {
    let mut buf = metadata;
    let _version = take_i16(&mut buf)?;
    let count = take_i32(&mut buf)?;
    if count < 0 {
        return Some(BTreeSet::new());
    }
    let mut topics = BTreeSet::new();
    for _ in 0..count {
        let len = take_i16(&mut buf)?;
        if len < 0 || buf.len() < len as usize {
            return None;
        }
        let (name, rest) = buf.split_at(len as usize);
        topics.insert(String::from_utf8(name.to_vec()).ok()?);
        buf = rest;
    }
    Some(topics)
}

fn take_i16(buf: &mut &[u8]) -> Option<i16> {
    let (head, rest) = buf.split_first_chunk::<2>()?;
    *buf = rest;
    Some(i16::from_be_bytes(*head))
}

fn take_i32(buf: &mut &[u8]) -> Option<i32> {
    let (head, rest) = buf.split_first_chunk::<4>()?;
    *buf = rest;
    Some(i32::from_be_bytes(*head))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A consumer-protocol subscription (v0 layout) to `topics` with no user data.
    pub fn subscription(topics: &[&str]) -> Bytes {
        let mut v = Vec::new();
        v.extend_from_slice(&0i16.to_be_bytes());
        v.extend_from_slice(&(topics.len() as i32).to_be_bytes());
        for t in topics {
            v.extend_from_slice(&(t.len() as i16).to_be_bytes());
            v.extend_from_slice(t.as_bytes());
        }
        v.extend_from_slice(&(-1i32).to_be_bytes());
        Bytes::from(v)
    }

    #[test]
    fn parses_subscriptions_and_refuses_garbage() {
        let topics = subscribed_topics(&subscription(&["a", "bb"])).unwrap();
        assert_eq!(topics.into_iter().collect::<Vec<_>>(), vec!["a", "bb"]);
        assert_eq!(subscribed_topics(&[0, 1, 0]), None);
        assert_eq!(subscribed_topics(&[0, 0, 0, 0, 0, 1, 0, 9, b'x']), None);
    }
}
