//! The records inside a v2 batch, for the one reader that must see them: the log cleaner, which
//! keeps some records of a batch and rebuilds it around them.
//!
//! Format of the (possibly compressed) records section after the 61-byte header (Kafka's
//! `DefaultRecord`; varints are zigzag-encoded, Protocol Buffers style):
//!
//! ```text
//! length          varint   bytes of the record after this field
//! attributes      int8     unused (0)
//! timestampDelta  varlong  record timestamp - batch baseTimestamp
//! offsetDelta     varint   record offset - batch baseOffset
//! keyLength       varint   -1 for a null key
//! key             bytes
//! valueLength     varint   -1 for a null value (a tombstone)
//! value           bytes
//! headerCount     varint
//! headers         (keyLength varint, key, valueLength varint, value) * headerCount
//! ```
//!
//! A rebuilt batch keeps everything the log and clients rely on: base offset and
//! `lastOffsetDelta` (so the batch still ends where it ended and `last_offset` never moves, even
//! when its last record went), producer id, epoch and base sequence, flags, codec, leader epoch;
//! only the record count, `maxTimestamp` (CreateTime) and the CRC follow the kept records.
//! KIP-534: a batch whose tombstones or marker the cleaner has seen carries its delete horizon in
//! `baseTimestamp` with attribute bit 6 set; record timestamp deltas are then relative to the
//! horizon, so every record keeps its timestamp.
//!
//! Headers are kept as raw bytes, so duplicate header keys and their order survive a rebuild.
//!
//! Thread-safety: pure functions over the bytes they are given.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::compression::{self as codec, Compressor, Decompressor};

use super::batch::{BatchError, BatchHeader, HEADER_SIZE, LOG_OVERHEAD, MAGIC_V2};

/// Attribute bit 6: `baseTimestamp` holds the batch's delete horizon (KIP-534).
pub const DELETE_HORIZON_BIT: i16 = 0x40;
const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const NO_TIMESTAMP: i64 = -1;

/// One record of a batch, its key, value and headers sharing the decompressed buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Offset - the batch's base offset.
    pub offset_delta: i32,
    /// Absolute timestamp (the batch's base timestamp + the record's delta).
    pub timestamp: i64,
    /// The key; None is a null key.
    pub key: Option<Bytes>,
    /// The value; None is a tombstone.
    pub value: Option<Bytes>,
    /// headerCount and the headers, as stored.
    headers: Bytes,
}

impl Record {
    /// A record with no headers (tests and builders).
    pub fn new(
        offset_delta: i32,
        timestamp: i64,
        key: Option<Bytes>,
        value: Option<Bytes>,
    ) -> Record {
        Record {
            offset_delta,
            timestamp,
            key,
            value,
            headers: Bytes::from_static(&[0]),
        }
    }
}

/// The delete horizon a batch carries (KIP-534), if any.
pub fn delete_horizon(header: &BatchHeader) -> Option<i64> {
    (header.attributes & DELETE_HORIZON_BIT != 0).then_some(header.base_timestamp)
}

fn invalid(what: &str) -> BatchError {
    BatchError::InvalidRecord(format!("cannot decode records: {what}"))
}

/// The records of the whole batch `batch` (decompressed as needed).
pub fn records_of(batch: &[u8]) -> Result<Vec<Record>, BatchError> {
    let header = BatchHeader::parse(batch)?;
    let total = header.total_size();
    if batch.len() < total {
        return Err(BatchError::Truncated {
            needed: total,
            available: batch.len(),
        });
    }
    let section = Bytes::copy_from_slice(&batch[HEADER_SIZE..total]);
    let mut data = decompress(header.compression(), section)?;
    let count = header.records_count.max(0) as usize;
    let mut out = Vec::with_capacity(count.min(data.len()));
    for _ in 0..count {
        out.push(parse_record(&mut data, header.base_timestamp)?);
    }
    Ok(out)
}

fn decompress(codec_id: u8, mut section: Bytes) -> Result<Bytes, BatchError> {
    let take = |b: &mut Bytes| Ok(b.copy_to_bytes(b.remaining()));
    let result = match codec_id {
        0 => return Ok(section),
        1 => codec::Gzip::decompress(&mut section, take),
        2 => codec::Snappy::decompress(&mut section, take),
        3 => codec::Lz4::decompress(&mut section, take),
        4 => codec::Zstd::decompress(&mut section, take),
        other => return Err(invalid(&format!("unknown compression codec {other}"))),
    };
    result.map_err(|e| invalid(&e.to_string()))
}

fn compress(codec_id: u8, data: &[u8]) -> Result<Vec<u8>, BatchError> {
    let mut out = BytesMut::new();
    let put = |b: &mut BytesMut| {
        b.put_slice(data);
        Ok(())
    };
    let result = match codec_id {
        0 => return Ok(data.to_vec()),
        1 => codec::Gzip::compress(&mut out, put),
        2 => codec::Snappy::compress(&mut out, put),
        3 => codec::Lz4::compress(&mut out, put),
        4 => codec::Zstd::compress(&mut out, put),
        other => return Err(invalid(&format!("unknown compression codec {other}"))),
    };
    result.map_err(|e| invalid(&e.to_string()))?;
    Ok(out.to_vec())
}

fn get_varlong(buf: &mut Bytes) -> Result<i64, BatchError> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        if !buf.has_remaining() {
            return Err(invalid("truncated varint"));
        }
        let byte = buf.get_u8();
        value |= ((byte & 0x7f) as u64) << shift;
        if byte & 0x80 == 0 {
            return Ok(((value >> 1) as i64) ^ -((value & 1) as i64));
        }
    }
    Err(invalid("varint too long"))
}

fn get_varint(buf: &mut Bytes) -> Result<i32, BatchError> {
    i32::try_from(get_varlong(buf)?).map_err(|_| invalid("varint out of range"))
}

fn put_varlong(out: &mut Vec<u8>, value: i64) {
    let mut v = ((value << 1) ^ (value >> 63)) as u64;
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_bytes(buf: &mut Bytes) -> Result<Option<Bytes>, BatchError> {
    let len = get_varint(buf)?;
    if len < 0 {
        return Ok(None);
    }
    let len = len as usize;
    if buf.remaining() < len {
        return Err(invalid("field longer than its record"));
    }
    Ok(Some(buf.split_to(len)))
}

fn parse_record(data: &mut Bytes, base_timestamp: i64) -> Result<Record, BatchError> {
    let len = get_varint(data)?;
    if len < 0 || data.remaining() < len as usize {
        return Err(invalid("record longer than its batch"));
    }
    let mut body = data.split_to(len as usize);
    if !body.has_remaining() {
        return Err(invalid("empty record"));
    }
    body.advance(1); // attributes
    let timestamp_delta = get_varlong(&mut body)?;
    let offset_delta = get_varint(&mut body)?;
    let key = get_bytes(&mut body)?;
    let value = get_bytes(&mut body)?;
    // What is left is headerCount and the headers; check that they parse.
    let headers = body.clone();
    let count = get_varint(&mut body)?;
    for _ in 0..count.max(0) {
        get_bytes(&mut body)?;
        get_bytes(&mut body)?;
    }
    if body.has_remaining() {
        return Err(invalid("bytes after the record's headers"));
    }
    Ok(Record {
        offset_delta,
        timestamp: base_timestamp.saturating_add(timestamp_delta),
        key,
        value,
        headers,
    })
}

fn put_bytes(out: &mut Vec<u8>, field: &Option<Bytes>) {
    match field {
        None => put_varlong(out, -1),
        Some(b) => {
            put_varlong(out, b.len() as i64);
            out.extend_from_slice(b);
        }
    }
}

fn encode_record(out: &mut Vec<u8>, record: &Record, base_timestamp: i64) {
    let mut body = Vec::with_capacity(32);
    body.push(0);
    put_varlong(&mut body, record.timestamp.wrapping_sub(base_timestamp));
    put_varlong(&mut body, record.offset_delta as i64);
    put_bytes(&mut body, &record.key);
    put_bytes(&mut body, &record.value);
    body.extend_from_slice(&record.headers);
    put_varlong(out, body.len() as i64);
    out.extend_from_slice(&body);
}

/// Rebuilds the batch `template` around `records` (a subset of its records, in order), with the
/// delete horizon `horizon` if given (else the template's, if it had one). Header fields as the
/// module docs say; the same compression codec.
pub fn rebuild_batch(
    template: &BatchHeader,
    records: &[Record],
    horizon: Option<i64>,
) -> Result<Vec<u8>, BatchError> {
    let horizon = horizon.or_else(|| delete_horizon(template));
    let log_append = template.attributes & TIMESTAMP_TYPE_BIT != 0;
    let base_timestamp = match (horizon, records.first()) {
        (Some(h), _) => h,
        (None, Some(first)) => first.timestamp,
        (None, None) => template.base_timestamp,
    };
    let max_timestamp = if log_append {
        template.max_timestamp
    } else {
        records
            .iter()
            .map(|r| r.timestamp)
            .max()
            .unwrap_or(NO_TIMESTAMP)
    };
    let mut plain = Vec::new();
    for record in records {
        encode_record(&mut plain, record, base_timestamp);
    }
    let (codec_id, section) = if records.is_empty() {
        // Kafka's empty batch header: no records, so nothing to compress.
        (0, Vec::new())
    } else {
        let codec_id = template.compression();
        (codec_id, compress(codec_id, &plain)?)
    };
    let mut attributes = (template.attributes & !COMPRESSION_MASK) | codec_id as i16;
    if horizon.is_some() {
        attributes |= DELETE_HORIZON_BIT;
    }
    let total = HEADER_SIZE + section.len();
    let mut out = Vec::with_capacity(total);
    out.put_i64(template.base_offset);
    out.put_i32((total - LOG_OVERHEAD) as i32);
    out.put_i32(template.partition_leader_epoch);
    out.put_i8(MAGIC_V2);
    out.put_u32(0); // CRC, below
    out.put_i16(attributes);
    out.put_i32(template.last_offset_delta);
    out.put_i64(base_timestamp);
    out.put_i64(max_timestamp);
    out.put_i64(template.producer_id);
    out.put_i16(template.producer_epoch);
    out.put_i32(template.base_sequence);
    out.put_i32(records.len() as i32);
    out.extend_from_slice(&section);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

/// Kafka's empty batch (`writeEmptyHeader`): what stays of a batch the cleaner must keep for
/// its producer but whose records all went. The header only, with the batch's offsets, producer
/// fields, flags, timestamp type and max timestamp; no codec, no delete horizon, base timestamp
/// -1, no records.
pub fn empty_batch(template: &BatchHeader) -> Vec<u8> {
    let attributes = template.attributes & !COMPRESSION_MASK & !DELETE_HORIZON_BIT;
    let mut out = Vec::with_capacity(HEADER_SIZE);
    out.put_i64(template.base_offset);
    out.put_i32((HEADER_SIZE - LOG_OVERHEAD) as i32);
    out.put_i32(template.partition_leader_epoch);
    out.put_i8(MAGIC_V2);
    out.put_u32(0);
    out.put_i16(attributes);
    out.put_i32(template.last_offset_delta);
    out.put_i64(NO_TIMESTAMP);
    out.put_i64(template.max_timestamp);
    out.put_i64(template.producer_id);
    out.put_i16(template.producer_epoch);
    out.put_i32(template.base_sequence);
    out.put_i32(0);
    let crc = crc32c::crc32c(&out[21..]);
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::batch::check_batch;
    use crate::test_support::{encode_batch, records as test_records, ALL_COMPRESSIONS};
    use kafka_protocol::records::{Compression, RecordBatchDecoder};

    #[test]
    fn varints_round_trip() {
        for v in [
            0i64,
            1,
            -1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut out = Vec::new();
            put_varlong(&mut out, v);
            assert_eq!(get_varlong(&mut Bytes::from(out)).unwrap(), v);
        }
        assert!(get_varlong(&mut Bytes::from_static(&[0x80])).is_err());
    }

    #[test]
    fn rebuilt_batches_keep_offsets_and_records_in_every_codec() {
        for compression in ALL_COMPRESSIONS {
            let mut batch = encode_batch(&test_records(0, 5, 1_000), compression);
            crate::log::set_base_offset(&mut batch, 100).unwrap();
            let header = BatchHeader::parse(&batch).unwrap();
            let all = records_of(&batch).unwrap();
            assert_eq!(all.len(), 5);
            // Keep the second and fourth, with a delete horizon.
            let kept = vec![all[1].clone(), all[3].clone()];
            let rebuilt = rebuild_batch(&header, &kept, Some(9_999_999)).unwrap();
            let h = check_batch(&rebuilt).unwrap();
            assert_eq!(h.base_offset, 100);
            assert_eq!(h.last_offset(), header.last_offset());
            assert_eq!(h.records_count, 2);
            assert_eq!(h.compression(), header.compression());
            assert_eq!(delete_horizon(&h), Some(9_999_999));
            assert_eq!(records_of(&rebuilt).unwrap(), kept);
            // A stock decoder reads the same offsets, keys, values and timestamps.
            let set = RecordBatchDecoder::decode(&mut Bytes::from(rebuilt)).unwrap();
            let offsets: Vec<i64> = set.records.iter().map(|r| r.offset).collect();
            assert_eq!(offsets, vec![101, 103]);
            assert_eq!(set.records[0].key, kept[0].key);
            assert_eq!(set.records[1].timestamp, kept[1].timestamp);
            // Rebuilding again without a horizon keeps the one it has.
            let again = rebuild_batch(&h, &kept, None).unwrap();
            assert_eq!(
                delete_horizon(&BatchHeader::parse(&again).unwrap()),
                Some(9_999_999)
            );
        }
    }

    #[test]
    fn an_empty_rebuild_is_a_header_that_still_ends_where_the_batch_ended() {
        let mut batch = encode_batch(&test_records(0, 3, 1_000), Compression::Gzip);
        crate::log::set_base_offset(&mut batch, 7).unwrap();
        let header = BatchHeader::parse(&batch).unwrap();
        let empty = empty_batch(&header);
        let h = check_batch(&empty).unwrap();
        assert_eq!((h.base_offset, h.last_offset(), h.records_count), (7, 9, 0));
        assert_eq!(
            (h.base_timestamp, h.max_timestamp),
            (-1, header.max_timestamp)
        );
        assert_eq!(delete_horizon(&h), None);
        assert_eq!(h.compression(), 0);
        assert_eq!(h.total_size(), HEADER_SIZE);
        assert!(records_of(&empty).unwrap().is_empty());
    }

    #[test]
    fn garbage_records_are_an_error_not_a_panic() {
        let batch = encode_batch(&test_records(0, 2, 1_000), Compression::None);
        let mut broken = batch.clone();
        let last = broken.len() - 3;
        broken[last] = 0x7f;
        let _ = records_of(&broken);
        let mut header_only = batch[..HEADER_SIZE].to_vec();
        header_only[8..12].copy_from_slice(&((HEADER_SIZE - LOG_OVERHEAD) as i32).to_be_bytes());
        assert!(records_of(&header_only).is_err());
    }
}
