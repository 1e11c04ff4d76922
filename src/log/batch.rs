//! A read-only / patching view over Kafka v2 record batch headers.
//!
//! Format (all integers big-endian), 61 bytes before the records:
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset
//!      8     4  batchLength            bytes after this field: total size = batchLength + 12
//!     12     4  partitionLeaderEpoch   not covered by the CRC
//!     16     1  magic (= 2)
//!     17     4  crc                    CRC32C of bytes 21 .. end of batch
//!     21     2  attributes             bits 0-2 compression, 3 LogAppendTime, 4 transactional, 5 control
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordsCount
//!     61        records (possibly compressed)
//! ```
//!
//! Invariants enforced by [`validate_batches`] (what Kafka's `LogValidator` demands of client
//! batches, minus anything that needs the records decoded): magic 2, `batchLength >= 49`, a known
//! compression codec, `recordsCount >= 1`, `lastOffsetDelta == recordsCount - 1`, and a matching
//! CRC. The log never decodes records on the append or fetch path; only the header is touched.
//!
//! Thread-safety: everything here is a pure function over the byte slice it is given.

/// Bytes before `batchLength`'s counted region (baseOffset + batchLength).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed v2 batch header.
pub const HEADER_SIZE: usize = 61;
/// The only record format this log stores.
pub const MAGIC_V2: i8 = 2;
/// Smallest legal `batchLength` (a header with no records).
pub const MIN_BATCH_LENGTH: i32 = (HEADER_SIZE - LOG_OVERHEAD) as i32;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
const CRC_AT: usize = 17;
const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORDS_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Highest compression codec id Kafka defines (zstd).
const MAX_COMPRESSION_CODEC: u8 = 4;

/// Why a byte range is not an acceptable v2 record batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    /// The stored CRC32C does not match the batch contents (Kafka: CORRUPT_MESSAGE).
    #[error(
        "batch at offset {base_offset}: stored crc {stored:#010x} != computed {computed:#010x}"
    )]
    CorruptMessage {
        /// baseOffset field of the batch as found.
        base_offset: i64,
        /// CRC stored in the header.
        stored: u32,
        /// CRC computed over the batch contents.
        computed: u32,
    },

    /// The batch is malformed (Kafka: INVALID_RECORD).
    #[error("invalid record batch: {0}")]
    InvalidRecord(String),

    /// Fewer bytes are present than the header or the batch length requires.
    #[error("truncated batch: {needed} bytes needed, {available} available")]
    Truncated {
        /// Bytes the header or batch length calls for.
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },
}

/// The decoded fixed header of one v2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes following the batchLength field.
    pub batch_length: i32,
    /// Leader epoch at append time (not CRC-covered).
    pub partition_leader_epoch: i32,
    /// Record format version; always 2 once parsed.
    pub magic: i8,
    /// CRC32C over attributes .. end of batch.
    pub crc: u32,
    /// Compression, timestamp type, transactional and control flags.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record (record timestamps are deltas from it).
    pub base_timestamp: i64,
    /// Largest record timestamp, or the append time for LogAppendTime batches.
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 if none.
    pub producer_id: i64,
    /// Idempotent producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence number of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn get_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

fn get_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn get_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Length of the batch starting at `buf[0]` as announced by its batchLength field, if at least
/// the first 12 bytes are present.
pub(crate) fn peek_total_size(buf: &[u8]) -> Option<i64> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    Some(get_i32(buf, BATCH_LENGTH_AT) as i64 + LOG_OVERHEAD as i64)
}

impl BatchHeader {
    /// Parses the header at the start of `buf`; checks only magic and that batchLength is sane.
    pub fn parse(buf: &[u8]) -> Result<BatchHeader, BatchError> {
        if buf.len() < HEADER_SIZE {
            return Err(BatchError::Truncated {
                needed: HEADER_SIZE,
                available: buf.len(),
            });
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::InvalidRecord(format!(
                "unsupported magic {magic}, only v2 record batches are accepted"
            )));
        }
        let batch_length = get_i32(buf, BATCH_LENGTH_AT);
        if batch_length < MIN_BATCH_LENGTH {
            return Err(BatchError::InvalidRecord(format!(
                "batch length {batch_length} is below the minimum {MIN_BATCH_LENGTH}"
            )));
        }
        Ok(BatchHeader {
            base_offset: get_i64(buf, BASE_OFFSET_AT),
            batch_length,
            partition_leader_epoch: get_i32(buf, PARTITION_LEADER_EPOCH_AT),
            magic,
            crc: get_i32(buf, CRC_AT) as u32,
            attributes: get_i16(buf, ATTRIBUTES_AT),
            last_offset_delta: get_i32(buf, LAST_OFFSET_DELTA_AT),
            base_timestamp: get_i64(buf, BASE_TIMESTAMP_AT),
            max_timestamp: get_i64(buf, MAX_TIMESTAMP_AT),
            producer_id: get_i64(buf, PRODUCER_ID_AT),
            producer_epoch: get_i16(buf, PRODUCER_EPOCH_AT),
            base_sequence: get_i32(buf, BASE_SEQUENCE_AT),
            records_count: get_i32(buf, RECORDS_COUNT_AT),
        })
    }

    /// Size of the whole batch in bytes, header included.
    pub fn total_size(&self) -> usize {
        // parse() guarantees batch_length >= MIN_BATCH_LENGTH > 0.
        self.batch_length as usize + LOG_OVERHEAD
    }

    /// Offset of the last record in the batch (saturating: a corrupt base offset read back from
    /// disk must not overflow).
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(self.last_offset_delta as i64)
    }

    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_BIT != 0
    }

    /// Whether the batch is a transaction control (commit/abort marker) batch.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_BIT != 0
    }

    /// Compression codec id: 0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd.
    pub fn compression(&self) -> u8 {
        (self.attributes & COMPRESSION_MASK) as u8
    }

    /// Whether record timestamps are the broker's append time (`max_timestamp`).
    pub fn timestamp_type_is_log_append(&self) -> bool {
        self.attributes & TIMESTAMP_TYPE_BIT != 0
    }
}

/// CRC32C over the CRC-covered part of one whole batch (`buf.len() >= total`).
fn compute_crc(buf: &[u8], total: usize) -> u32 {
    crc32c::crc32c(&buf[ATTRIBUTES_AT..total])
}

/// Validates the batch at the start of `buf` (which may continue with more batches) as the log
/// stores it: structure, codec and CRC. A compacted batch passes: it may hold fewer records than
/// its offset range (the cleaner keeps `lastOffsetDelta`), or none. Returns its header.
pub fn check_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    if let Some(total) = peek_total_size(buf) {
        // Checked before parse so that a torn tail reports Truncated even when the length is sane
        // but fewer than HEADER_SIZE bytes made it to disk.
        if total >= HEADER_SIZE as i64 && (buf.len() as i64) < total {
            return Err(BatchError::Truncated {
                needed: total as usize,
                available: buf.len(),
            });
        }
    }
    let header = BatchHeader::parse(buf)?;
    let total = header.total_size();
    if buf.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    let computed = compute_crc(buf, total);
    if computed != header.crc {
        return Err(BatchError::CorruptMessage {
            base_offset: header.base_offset,
            stored: header.crc,
            computed,
        });
    }
    if header.compression() > MAX_COMPRESSION_CODEC {
        return Err(BatchError::InvalidRecord(format!(
            "unknown compression codec {}",
            header.compression()
        )));
    }
    if header.last_offset_delta < 0 {
        return Err(BatchError::InvalidRecord(format!(
            "negative last offset delta {}",
            header.last_offset_delta
        )));
    }
    if header.records_count < 0 {
        return Err(BatchError::InvalidRecord(format!(
            "negative record count {}",
            header.records_count
        )));
    }
    Ok(header)
}

/// [`check_batch`] plus what Kafka's `LogValidator` demands of a batch a client sends: it holds
/// records and its offset range matches their count.
pub fn check_client_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = check_batch(buf)?;
    if header.records_count <= 0 {
        return Err(BatchError::InvalidRecord(format!(
            "invalid reported count for record batch: {}",
            header.records_count
        )));
    }
    if header.records_count as i64 != header.last_offset_delta as i64 + 1 {
        return Err(BatchError::InvalidRecord(format!(
            "inconsistent batch offset range: last offset delta {} but {} records",
            header.last_offset_delta, header.records_count
        )));
    }
    Ok(header)
}

/// Batches that passed validation, with their headers in order: what an append takes, so that
/// validation (CRC work) can happen before any lock and is never repeated.
#[derive(Debug, Clone)]
pub struct ValidBatches {
    headers: Vec<BatchHeader>,
    /// Bytes validated; an append refuses a buffer of another length.
    len: usize,
}

impl ValidBatches {
    /// The headers, in order.
    pub fn headers(&self) -> &[BatchHeader] {
        &self.headers
    }

    /// Bytes of the validated buffer.
    pub fn byte_len(&self) -> usize {
        self.len
    }

    pub(crate) fn into_headers(self) -> Vec<BatchHeader> {
        self.headers
    }
}

impl std::ops::Deref for ValidBatches {
    type Target = [BatchHeader];
    fn deref(&self) -> &[BatchHeader] {
        &self.headers
    }
}

/// Checks that `buf` is one or more whole, valid client batches (see [`check_client_batch`])
/// with no trailing bytes: what a leader appends.
pub fn validate_batches(buf: &[u8]) -> Result<ValidBatches, BatchError> {
    validate_with(buf, check_client_batch)
}

/// Checks that `buf` is one or more whole batches as a log stores them (see [`check_batch`]),
/// with no trailing bytes: what a follower or the cleaner appends.
pub fn validate_stored_batches(buf: &[u8]) -> Result<ValidBatches, BatchError> {
    validate_with(buf, check_batch)
}

fn validate_with(
    buf: &[u8],
    check: fn(&[u8]) -> Result<BatchHeader, BatchError>,
) -> Result<ValidBatches, BatchError> {
    if buf.is_empty() {
        return Err(BatchError::InvalidRecord("no record batches".to_string()));
    }
    let mut headers = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let header = check(&buf[pos..]).map_err(|e| match e {
            BatchError::Truncated { needed, available } => BatchError::InvalidRecord(format!(
                "partial batch at byte {pos}: {needed} bytes announced, {available} present"
            )),
            other => other,
        })?;
        pos += header.total_size();
        headers.push(header);
    }
    Ok(ValidBatches {
        headers,
        len: buf.len(),
    })
}

fn require_header(buf: &[u8]) -> Result<(), BatchError> {
    if buf.len() < HEADER_SIZE {
        return Err(BatchError::Truncated {
            needed: HEADER_SIZE,
            available: buf.len(),
        });
    }
    Ok(())
}

/// Rewrites baseOffset of the batch at the start of `buf` (not CRC-covered).
pub fn set_base_offset(buf: &mut [u8], offset: i64) -> Result<(), BatchError> {
    require_header(buf)?;
    buf[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&offset.to_be_bytes());
    Ok(())
}

/// Rewrites partitionLeaderEpoch of the batch at the start of `buf` (not CRC-covered).
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) -> Result<(), BatchError> {
    require_header(buf)?;
    buf[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4]
        .copy_from_slice(&epoch.to_be_bytes());
    Ok(())
}

/// Marks the batch at the start of `buf` as LogAppendTime with maxTimestamp `ts`, recomputing the
/// CRC since both fields are covered by it. baseTimestamp is left alone, as Kafka does.
pub fn set_log_append_time(buf: &mut [u8], ts: i64) -> Result<(), BatchError> {
    let header = BatchHeader::parse(buf)?;
    let total = header.total_size();
    if buf.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            available: buf.len(),
        });
    }
    let attributes = header.attributes | TIMESTAMP_TYPE_BIT;
    buf[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&ts.to_be_bytes());
    let crc = compute_crc(buf, total);
    buf[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{encode_batch, records, ALL_COMPRESSIONS};
    use kafka_protocol::records::{Compression, RecordBatchDecoder, TimestampType};

    #[test]
    fn parse_reads_every_field() {
        let buf = encode_batch(&records(10, 3, 1_000), Compression::None);
        let h = BatchHeader::parse(&buf).unwrap();
        assert_eq!(h.base_offset, 10);
        assert_eq!(h.total_size(), buf.len());
        assert_eq!(h.magic, 2);
        assert_eq!(h.last_offset_delta, 2);
        assert_eq!(h.last_offset(), 12);
        assert_eq!(h.records_count, 3);
        assert_eq!(h.base_timestamp, 1_000);
        assert_eq!(h.max_timestamp, 1_002);
        assert_eq!(h.producer_id, -1);
        assert_eq!(h.producer_epoch, -1);
        assert_eq!(h.base_sequence, -1);
        assert_eq!(h.partition_leader_epoch, -1);
        assert!(!h.is_transactional());
        assert!(!h.is_control());
        assert!(!h.timestamp_type_is_log_append());
        assert_eq!(h.compression(), 0);
    }

    #[test]
    fn validate_accepts_every_compression() {
        for (i, c) in ALL_COMPRESSIONS.iter().enumerate() {
            let buf = encode_batch(&records(0, 5, 7), *c);
            let hs = validate_batches(&buf).unwrap();
            assert_eq!(hs.len(), 1);
            assert_eq!(hs[0].compression() as usize, i, "{c:?}");
            assert_eq!(hs[0].records_count, 5);
        }
    }

    #[test]
    fn validate_walks_several_batches() {
        let mut buf = encode_batch(&records(0, 2, 1), Compression::None);
        buf.extend(encode_batch(&records(0, 4, 1), Compression::Lz4));
        buf.extend(encode_batch(&records(0, 1, 1), Compression::Gzip));
        let hs = validate_batches(&buf).unwrap();
        assert_eq!(
            hs.iter().map(|h| h.records_count).collect::<Vec<_>>(),
            vec![2, 4, 1]
        );
    }

    #[test]
    fn crc_corruption_is_corrupt_message() {
        let clean = encode_batch(&records(0, 3, 1), Compression::None);
        // Every CRC-covered byte must be detected.
        for i in ATTRIBUTES_AT..clean.len() {
            let mut buf = clean.clone();
            buf[i] ^= 0x40;
            match validate_batches(&buf) {
                Err(BatchError::CorruptMessage { .. }) => {}
                other => panic!("byte {i}: {other:?}"),
            }
        }
    }

    #[test]
    fn malformed_batches_are_invalid_record() {
        let clean = encode_batch(&records(0, 3, 1), Compression::None);
        let invalid =
            |buf: &[u8]| matches!(validate_batches(buf), Err(BatchError::InvalidRecord(_)));

        assert!(invalid(&[]));
        assert!(invalid(&clean[..clean.len() - 1]), "trailing partial batch");
        let mut trailing = clean.clone();
        trailing.extend_from_slice(&[0, 0, 0]);
        assert!(invalid(&trailing), "trailing garbage");

        let mut magic1 = clean.clone();
        magic1[MAGIC_AT] = 1;
        assert!(invalid(&magic1));

        let mut short_len = clean.clone();
        short_len[BATCH_LENGTH_AT..BATCH_LENGTH_AT + 4].copy_from_slice(&48i32.to_be_bytes());
        assert!(invalid(&short_len));

        let with_field = |at: usize, bytes: &[u8]| {
            let mut b = clean.clone();
            b[at..at + bytes.len()].copy_from_slice(bytes);
            let total = b.len();
            let crc = compute_crc(&b, total);
            b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
            b
        };
        assert!(invalid(&with_field(
            LAST_OFFSET_DELTA_AT,
            &(-1i32).to_be_bytes()
        )));
        assert!(invalid(&with_field(
            LAST_OFFSET_DELTA_AT,
            &5i32.to_be_bytes()
        )));
        assert!(invalid(&with_field(RECORDS_COUNT_AT, &0i32.to_be_bytes())));
        assert!(invalid(&with_field(
            RECORDS_COUNT_AT,
            &(-3i32).to_be_bytes()
        )));
        assert!(invalid(&with_field(ATTRIBUTES_AT, &7i16.to_be_bytes())));

        // As a log stores them, compacted batches (fewer records than offsets, or none) are
        // valid; a negative count or delta is not.
        for compacted in [
            with_field(LAST_OFFSET_DELTA_AT, &5i32.to_be_bytes()),
            with_field(RECORDS_COUNT_AT, &0i32.to_be_bytes()),
        ] {
            assert_eq!(validate_stored_batches(&compacted).unwrap().len(), 1);
        }
        for bad in [
            with_field(RECORDS_COUNT_AT, &(-3i32).to_be_bytes()),
            with_field(LAST_OFFSET_DELTA_AT, &(-1i32).to_be_bytes()),
        ] {
            assert!(validate_stored_batches(&bad).is_err());
        }
    }

    #[test]
    fn truncation_is_reported_by_check_batch() {
        let clean = encode_batch(&records(0, 3, 1), Compression::None);
        for cut in [0, 5, 12, 30, 60, clean.len() - 1] {
            assert!(
                matches!(
                    check_batch(&clean[..cut]),
                    Err(BatchError::Truncated { .. })
                ),
                "cut at {cut}"
            );
        }
    }

    #[test]
    fn offset_and_epoch_rewrites_keep_crc_valid() {
        let mut buf = encode_batch(&records(0, 3, 1), Compression::Zstd);
        set_base_offset(&mut buf, 1234).unwrap();
        set_partition_leader_epoch(&mut buf, 7).unwrap();
        let h = check_batch(&buf).unwrap();
        assert_eq!(h.base_offset, 1234);
        assert_eq!(h.partition_leader_epoch, 7);
        let set = RecordBatchDecoder::decode(&mut bytes::Bytes::from(buf)).unwrap();
        let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
        assert_eq!(offsets, vec![1234, 1235, 1236]);
    }

    #[test]
    fn log_append_time_rewrite_recomputes_crc() {
        for c in ALL_COMPRESSIONS {
            let mut buf = encode_batch(&records(0, 4, 100), c);
            set_log_append_time(&mut buf, 99_999).unwrap();
            let h = check_batch(&buf).unwrap();
            assert!(h.timestamp_type_is_log_append());
            assert_eq!(h.max_timestamp, 99_999);
            assert_eq!(h.base_timestamp, 100);
            assert_eq!(h.compression(), c as u8);
            // The decoder verifies the CRC too and sees the flag.
            let set = RecordBatchDecoder::decode(&mut bytes::Bytes::from(buf)).unwrap();
            assert_eq!(set.records.len(), 4);
            assert!(set
                .records
                .iter()
                .all(|r| r.timestamp_type == TimestampType::LogAppend));
        }
    }

    #[test]
    fn rewrites_reject_short_buffers() {
        let mut short = [0u8; 20];
        assert!(set_base_offset(&mut short, 1).is_err());
        assert!(set_partition_leader_epoch(&mut short, 1).is_err());
        assert!(set_log_append_time(&mut short, 1).is_err());
        let mut buf = encode_batch(&records(0, 3, 1), Compression::None);
        let n = buf.len();
        assert!(matches!(
            set_log_append_time(&mut buf[..n - 1], 5),
            Err(BatchError::Truncated { .. })
        ));
    }
}
