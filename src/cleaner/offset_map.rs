//! The cleaner's key -> latest offset map over a dirty section (Kafka's `SkimpyOffsetMap`).
//!
//! Kafka stores an MD5 of each key, so two keys whose hashes collide can make the cleaner drop
//! the newer key's record. This map stores the keys themselves: no collision can ever lose a
//! record. Its memory is bounded instead by an estimate of what each entry costs (the key bytes
//! plus a fixed overhead), against `log.cleaner.dedupe.buffer.size / log.cleaner.threads` times
//! `log.cleaner.io.buffer.load.factor`, Kafka's bound.

use std::collections::HashMap;

/// Estimated bytes per entry besides the key: the boxed key's pointer and length, the offset,
/// and the hash table's control byte and slack.
pub const ENTRY_OVERHEAD: usize = 48;

/// Keys of one dirty section and the latest offset of each.
#[derive(Debug)]
pub struct OffsetMap {
    map: HashMap<Box<[u8]>, i64>,
    bytes: usize,
    capacity: usize,
    latest_offset: i64,
}

impl OffsetMap {
    /// An empty map that may use about `capacity_bytes`.
    pub fn new(capacity_bytes: usize) -> OffsetMap {
        OffsetMap {
            map: HashMap::new(),
            bytes: 0,
            capacity: capacity_bytes,
            latest_offset: -1,
        }
    }

    /// Forgets every key (a new round).
    pub fn clear(&mut self) {
        self.map.clear();
        self.bytes = 0;
        self.latest_offset = -1;
    }

    /// Whether `key` can be added without passing the bound (a key already present always can).
    pub fn has_room_for(&self, key: &[u8]) -> bool {
        self.map.contains_key(key) || self.bytes + key.len() + ENTRY_OVERHEAD <= self.capacity
    }

    /// Records `offset` as the latest of `key` (offsets are put in increasing order).
    pub fn put(&mut self, key: &[u8], offset: i64) {
        match self.map.get_mut(key) {
            Some(o) => *o = offset,
            None => {
                self.bytes += key.len() + ENTRY_OVERHEAD;
                self.map.insert(key.into(), offset);
            }
        }
        self.latest_offset = self.latest_offset.max(offset);
    }

    /// The latest offset of `key`, -1 if it is not in the section.
    pub fn get(&self, key: &[u8]) -> i64 {
        self.map.get(key).copied().unwrap_or(-1)
    }

    /// Extends the section the map covers to `offset` (a batch or segment read wholly).
    pub fn update_latest_offset(&mut self, offset: i64) {
        self.latest_offset = self.latest_offset.max(offset);
    }

    /// The last offset the map covers, -1 when empty.
    pub fn latest_offset(&self) -> i64 {
        self.latest_offset
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is mapped.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_latest_offset_and_respects_its_bound() {
        let mut map = OffsetMap::new(2 * (ENTRY_OVERHEAD + 1));
        assert_eq!(map.get(b"a"), -1);
        map.put(b"a", 3);
        map.put(b"a", 7);
        assert_eq!(map.get(b"a"), 7);
        assert!(map.has_room_for(b"b"));
        map.put(b"b", 8);
        assert!(!map.has_room_for(b"c"));
        assert!(map.has_room_for(b"a"));
        map.update_latest_offset(12);
        assert_eq!((map.len(), map.latest_offset()), (2, 12));
        map.clear();
        assert!(map.is_empty());
        assert_eq!(map.latest_offset(), -1);
    }
}
