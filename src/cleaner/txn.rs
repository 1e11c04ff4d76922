//! Which transactional data and markers a cleaning round may drop (Kafka's
//! `CleanedTransactionMetadata`), fed the batches of one round in offset order.
//!
//! - A transactional data batch of a producer whose aborted transaction (from the transaction
//!   index) has begun at or before it is aborted data: it goes.
//! - An ABORT marker stays while the round saw data of its transaction (which this round drops),
//!   and its transaction index entry stays with it; once a round sees none, the marker may go
//!   (after its delete horizon, see `clean`).
//! - A COMMIT marker stays while the round saw a transactional batch of its producer since the
//!   producer's previous marker; once none is left, it may go likewise.
//! - A control batch without records may always go.

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::log::AbortedTxn;

/// Kafka's control record type of an ABORT marker (the key's second int16).
const ABORT: i16 = 0;
/// Kafka's control record type of a COMMIT marker.
const COMMIT: i16 = 1;

#[derive(Debug, Clone, Copy)]
struct OngoingAbort {
    txn: AbortedTxn,
    data_seen: bool,
}

/// What a control batch means for the round.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlVerdict {
    /// The marker's transaction has no data left: the marker may go once its horizon passed.
    pub can_discard: bool,
    /// The aborted transaction to keep in the cleaned segment's transaction index.
    pub keep_index_entry: Option<AbortedTxn>,
}

/// The transaction state of one cleaning round.
#[derive(Debug, Default)]
pub struct TxnMetadata {
    /// Aborted transactions not yet begun in the round, by (first offset, producer, marker).
    pending: BTreeSet<(i64, i64, i64, i64)>,
    ongoing_aborted: HashMap<i64, OngoingAbort>,
    ongoing_committed: HashSet<i64>,
}

impl TxnMetadata {
    /// Adds aborted transactions (duplicates are ignored).
    pub fn add_aborted(&mut self, txns: impl IntoIterator<Item = AbortedTxn>) {
        for t in txns {
            self.pending.insert((
                t.first_offset,
                t.producer_id,
                t.last_offset,
                t.last_stable_offset,
            ));
        }
    }

    fn consume_up_to(&mut self, offset: i64) {
        while let Some(&first) = self.pending.first() {
            if first.0 > offset {
                break;
            }
            self.pending.pop_first();
            let (first_offset, producer_id, last_offset, last_stable_offset) = first;
            self.ongoing_aborted
                .entry(producer_id)
                .or_insert(OngoingAbort {
                    txn: AbortedTxn {
                        producer_id,
                        first_offset,
                        last_offset,
                        last_stable_offset,
                    },
                    data_seen: false,
                });
        }
    }

    /// A data batch; true if it is aborted data (to be dropped).
    pub fn on_data_batch(
        &mut self,
        producer_id: i64,
        transactional: bool,
        last_offset: i64,
    ) -> bool {
        self.consume_up_to(last_offset);
        if !transactional {
            return false;
        }
        match self.ongoing_aborted.get_mut(&producer_id) {
            Some(abort) => {
                abort.data_seen = true;
                true
            }
            None => {
                self.ongoing_committed.insert(producer_id);
                false
            }
        }
    }

    /// A control batch; `key` is its first record's key (None: no records).
    pub fn on_control_batch(
        &mut self,
        producer_id: i64,
        last_offset: i64,
        key: Option<&[u8]>,
    ) -> ControlVerdict {
        self.consume_up_to(last_offset);
        let kind = key
            .filter(|k| k.len() >= 4)
            .map(|k| i16::from_be_bytes([k[2], k[3]]));
        match kind {
            None if key.is_none() => ControlVerdict {
                can_discard: true,
                keep_index_entry: None,
            },
            Some(ABORT) => match self.ongoing_aborted.remove(&producer_id) {
                Some(abort) if abort.data_seen => ControlVerdict {
                    can_discard: false,
                    keep_index_entry: Some(abort.txn),
                },
                _ => ControlVerdict {
                    can_discard: true,
                    keep_index_entry: None,
                },
            },
            Some(COMMIT) => ControlVerdict {
                can_discard: !self.ongoing_committed.remove(&producer_id),
                keep_index_entry: None,
            },
            _ => ControlVerdict {
                can_discard: false,
                keep_index_entry: None,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABORT_KEY: [u8; 4] = [0, 0, 0, 0];
    const COMMIT_KEY: [u8; 4] = [0, 0, 0, 1];

    #[test]
    fn aborted_data_goes_and_its_marker_waits_one_round() {
        let txn = AbortedTxn {
            producer_id: 7,
            first_offset: 10,
            last_offset: 20,
            last_stable_offset: 21,
        };
        let mut round = TxnMetadata::default();
        round.add_aborted([txn, txn]);
        assert!(
            !round.on_data_batch(7, true, 5),
            "before the transaction began"
        );
        assert!(round.on_data_batch(7, true, 12));
        assert!(
            !round.on_data_batch(8, true, 13),
            "another producer's data is committed"
        );
        let v = round.on_control_batch(7, 20, Some(&ABORT_KEY));
        assert_eq!(
            v,
            ControlVerdict {
                can_discard: false,
                keep_index_entry: Some(txn)
            }
        );
        let v = round.on_control_batch(8, 21, Some(&COMMIT_KEY));
        assert!(!v.can_discard, "producer 8 has data before its commit");
        // The next round: the data is gone.
        let mut next = TxnMetadata::default();
        next.add_aborted([txn]);
        let v = next.on_control_batch(7, 20, Some(&ABORT_KEY));
        assert!(v.can_discard && v.keep_index_entry.is_none());
        assert!(next.on_control_batch(8, 21, Some(&COMMIT_KEY)).can_discard);
        assert!(next.on_control_batch(9, 22, None).can_discard);
        assert!(
            !next
                .on_control_batch(9, 23, Some(&[0, 0, 0, 5]))
                .can_discard
        );
        assert!(!next.on_data_batch(-1, false, 30));
    }
}
