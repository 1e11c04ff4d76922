//! Request decoding and response encoding around the kafka-protocol crate's messages.
//!
//! A frame (without its 4-byte length, which tokio-util's length codec strips) starts with
//! api key and version; those pick the header version (flexible versions use header v2), the
//! header gives the correlation id, and the rest is the body.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::versions;

/// A request ready for dispatch.
#[derive(Debug)]
pub struct Request {
    /// The decoded header (api key, version, correlation id, client id).
    pub header: RequestHeader,
    /// The API.
    pub api_key: ApiKey,
    /// The decoded body.
    pub body: RequestKind,
    /// The client's address (set by the connection; group members report it as client host).
    pub peer: Option<std::net::SocketAddr>,
}

/// Why a frame could not become a request; every variant but the ApiVersions fallback closes
/// the connection, as Kafka does.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    /// An API key no Kafka version defines, or one Rivulet does not answer.
    #[error("unsupported api key {0}")]
    UnsupportedApi(i16),
    /// A version outside the served range of a known API.
    #[error("unsupported version {version} of {key:?}")]
    UnsupportedVersion {
        /// The API.
        key: ApiKey,
        /// The version asked for.
        version: i16,
    },
    /// ApiVersions at a version we do not know: answered as v0 with UNSUPPORTED_VERSION (KIP-511).
    #[error("ApiVersions v{version} is newer than supported")]
    ApiVersionsFallback {
        /// The correlation id to answer with.
        correlation_id: i32,
        /// The version the client asked for.
        version: i16,
    },
    /// The bytes do not decode as the header or body they claim to be.
    #[error("malformed request: {0}")]
    Malformed(String),
}

/// Decodes one frame into a request, validating api key and version against the one table.
pub fn decode_request(mut frame: Bytes) -> Result<Request, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Malformed(format!(
            "frame of {} bytes is shorter than a request header",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnsupportedApi(raw_key))?;
    let Some(range) = versions::supported(api_key) else {
        return Err(FrameError::UnsupportedApi(raw_key));
    };
    if api_key == ApiKey::ApiVersions && (version < range.min || version > range.max) {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Err(FrameError::ApiVersionsFallback {
            correlation_id,
            version,
        });
    }
    if !versions::is_served(api_key, version) {
        return Err(FrameError::UnsupportedVersion {
            key: api_key,
            version,
        });
    }
    let header_version = api_key.request_header_version(version);
    let header = RequestHeader::decode(&mut frame, header_version)
        .map_err(|e| FrameError::Malformed(format!("header: {e}")))?;
    let body = RequestKind::decode(api_key, &mut frame, version)
        .map_err(|e| FrameError::Malformed(format!("{api_key:?} v{version} body: {e}")))?;
    if frame.has_remaining() {
        // Kafka ignores bytes after the body, and librdkafka sends some (Metadata v13 from
        // describe_topics carries three); refusing them would break real clients.
        tracing::trace!(
            ?api_key,
            version,
            left = frame.remaining(),
            "bytes after request body"
        );
    }
    Ok(Request {
        header,
        api_key,
        body,
        peer: None,
    })
}

/// Encodes a response with its size prefix and header, ready to write to the socket.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Result<BytesMut, FrameError> {
    // ApiVersions answers with header v0 at every version so old clients can always parse it.
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    header
        .encode(&mut buf, header_version)
        .map_err(|e| FrameError::Malformed(format!("encoding response header: {e}")))?;
    body.encode(&mut buf, version)
        .map_err(|e| FrameError::Malformed(format!("encoding {api_key:?} v{version}: {e}")))?;
    let size = (buf.len() - 4) as i32;
    buf[0..4].copy_from_slice(&size.to_be_bytes());
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{MetadataRequest, RequestKind};
    use proptest::prelude::*;

    fn frame_of(api_key: ApiKey, version: i16, body: RequestKind) -> Vec<u8> {
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7);
        let mut buf = BytesMut::new();
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        buf.to_vec()
    }

    #[test]
    fn decodes_a_valid_frame() {
        let f = frame_of(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        );
        let r = decode_request(Bytes::from(f)).unwrap();
        assert_eq!(r.api_key, ApiKey::Metadata);
        assert_eq!(r.header.correlation_id, 7);
    }

    #[test]
    fn fallback_and_refusals() {
        let mut f = frame_of(
            ApiKey::ApiVersions,
            3,
            RequestKind::ApiVersions(Default::default()),
        );
        f[2..4].copy_from_slice(&77i16.to_be_bytes());
        assert!(matches!(
            decode_request(Bytes::from(f)),
            Err(FrameError::ApiVersionsFallback {
                correlation_id: 7,
                version: 77
            })
        ));
        let f = vec![0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff];
        assert!(matches!(
            decode_request(Bytes::from(f)),
            Err(FrameError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            decode_request(Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 0])),
            Err(FrameError::UnsupportedApi(0x7f7f))
        ));
    }

    fn default_body(key: ApiKey) -> RequestKind {
        use kafka_protocol::messages::*;
        match key {
            ApiKey::Produce => RequestKind::Produce(ProduceRequest::default()),
            ApiKey::Fetch => RequestKind::Fetch(FetchRequest::default()),
            ApiKey::ListOffsets => RequestKind::ListOffsets(ListOffsetsRequest::default()),
            ApiKey::Metadata => RequestKind::Metadata(MetadataRequest::default()),
            ApiKey::ApiVersions => RequestKind::ApiVersions(ApiVersionsRequest::default()),
            ApiKey::CreateTopics => RequestKind::CreateTopics(CreateTopicsRequest::default()),
            ApiKey::DeleteTopics => RequestKind::DeleteTopics(DeleteTopicsRequest::default()),
            ApiKey::CreatePartitions => {
                RequestKind::CreatePartitions(CreatePartitionsRequest::default())
            }
            ApiKey::DescribeCluster => {
                RequestKind::DescribeCluster(DescribeClusterRequest::default())
            }
            ApiKey::DeleteRecords => RequestKind::DeleteRecords(DeleteRecordsRequest::default()),
            ApiKey::DescribeConfigs => {
                RequestKind::DescribeConfigs(DescribeConfigsRequest::default())
            }
            ApiKey::InitProducerId => RequestKind::InitProducerId(InitProducerIdRequest::default()),
            ApiKey::DescribeProducers => {
                RequestKind::DescribeProducers(DescribeProducersRequest::default())
            }
            ApiKey::FindCoordinator => {
                RequestKind::FindCoordinator(FindCoordinatorRequest::default())
            }
            ApiKey::JoinGroup => RequestKind::JoinGroup(JoinGroupRequest::default()),
            ApiKey::SyncGroup => RequestKind::SyncGroup(SyncGroupRequest::default()),
            ApiKey::Heartbeat => RequestKind::Heartbeat(HeartbeatRequest::default()),
            ApiKey::LeaveGroup => RequestKind::LeaveGroup(LeaveGroupRequest::default()),
            ApiKey::OffsetCommit => RequestKind::OffsetCommit(OffsetCommitRequest::default()),
            // Before v2 the topic list is not nullable.
            ApiKey::OffsetFetch => {
                RequestKind::OffsetFetch(OffsetFetchRequest::default().with_topics(Some(vec![])))
            }
            ApiKey::ListGroups => RequestKind::ListGroups(ListGroupsRequest::default()),
            ApiKey::DescribeGroups => RequestKind::DescribeGroups(DescribeGroupsRequest::default()),
            ApiKey::DeleteGroups => RequestKind::DeleteGroups(DeleteGroupsRequest::default()),
            ApiKey::OffsetDelete => RequestKind::OffsetDelete(OffsetDeleteRequest::default()),
            other => panic!("add a default body for {other:?}"),
        }
    }

    #[test]
    fn every_served_version_round_trips() {
        for range in crate::protocol::SUPPORTED {
            for version in range.served_min..=range.max {
                let f = frame_of(range.key, version, default_body(range.key));
                let r = decode_request(Bytes::from(f))
                    .unwrap_or_else(|e| panic!("{:?} v{version}: {e}", range.key));
                assert_eq!(r.api_key, range.key);
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The frame decoder's fuzz target: arbitrary bytes never panic or abort.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(Bytes::from(bytes));
        }

        /// Valid frames of every served API with bytes flipped or cut off: an error or a
        /// request, never a panic or a huge allocation.
        #[test]
        fn mutated_frames_never_panic(
            key_index in 0usize..crate::protocol::SUPPORTED.len(),
            version_pick in any::<u16>(),
            flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..8),
            cut in any::<usize>(),
        ) {
            let range = crate::protocol::SUPPORTED[key_index];
            let span = (range.max - range.served_min + 1) as u16;
            let version = range.served_min + (version_pick % span) as i16;
            let body = default_body(range.key);
            let key = range.key;
            let mut f = frame_of(key, version, body);
            for (at, x) in flips {
                let len = f.len();
                f[at % len] ^= x;
            }
            let cut = cut % (f.len() + 1);
            f.truncate(cut);
            let _ = decode_request(Bytes::from(f));
        }
    }
}
