//! Request decoding and response encoding around the kafka-protocol crate's messages.
//!
//! A frame (without its 4-byte length, which tokio-util's length codec strips) starts with
//! api key and version; those pick the header version (flexible versions use header v2), the
//! header gives the correlation id, and the rest is the body.

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable};

use super::ApiRange;

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

/// Decodes one frame into a request, validating api key and version against the one table
/// (`range_of` answers an API's versions, None for an API Rivulet does not serve).
pub fn decode_request(
    mut frame: Bytes,
    range_of: impl Fn(ApiKey) -> Option<ApiRange>,
) -> Result<Request, FrameError> {
    if frame.len() < 8 {
        return Err(FrameError::Malformed(format!(
            "frame of {} bytes is shorter than a request header",
            frame.len()
        )));
    }
    let raw_key = i16::from_be_bytes([frame[0], frame[1]]);
    let version = i16::from_be_bytes([frame[2], frame[3]]);
    let api_key = ApiKey::try_from(raw_key).map_err(|_| FrameError::UnsupportedApi(raw_key))?;
    let Some(range) = range_of(api_key) else {
        return Err(FrameError::UnsupportedApi(raw_key));
    };
    if api_key == ApiKey::ApiVersions && !range.advertises(version) {
        let correlation_id = i32::from_be_bytes([frame[4], frame[5], frame[6], frame[7]]);
        return Err(FrameError::ApiVersionsFallback {
            correlation_id,
            version,
        });
    }
    if !range.serves(version) {
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

/// A request frame (without its size prefix) as a client encodes it, correlation id 7.
#[cfg(test)]
pub(crate) fn frame_of(api_key: ApiKey, version: i16, body: RequestKind) -> Vec<u8> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::{MetadataRequest, RequestKind};
    use proptest::prelude::*;

    /// A table serving Metadata 0-13 and ApiVersions 0-4 only (the real one is
    /// `handlers::registry`, whose tests fuzz every API through this decoder).
    fn test_range(key: ApiKey) -> Option<ApiRange> {
        match key {
            ApiKey::Metadata => Some(ApiRange {
                min: 0,
                served_min: 0,
                max: 13,
            }),
            ApiKey::ApiVersions => Some(ApiRange {
                min: 0,
                served_min: 0,
                max: 4,
            }),
            ApiKey::Produce => Some(ApiRange {
                min: 0,
                served_min: 3,
                max: 13,
            }),
            _ => None,
        }
    }

    #[test]
    fn decodes_a_valid_frame() {
        let f = frame_of(
            ApiKey::Metadata,
            12,
            RequestKind::Metadata(MetadataRequest::default()),
        );
        let r = decode_request(Bytes::from(f), test_range).unwrap();
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
            decode_request(Bytes::from(f), test_range),
            Err(FrameError::ApiVersionsFallback {
                correlation_id: 7,
                version: 77
            })
        ));
        let f = vec![0, 0, 0, 2, 0, 0, 0, 1, 0xff, 0xff];
        assert!(matches!(
            decode_request(Bytes::from(f), test_range),
            Err(FrameError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            decode_request(
                Bytes::from_static(&[0x7f, 0x7f, 0, 0, 0, 0, 0, 0]),
                test_range
            ),
            Err(FrameError::UnsupportedApi(0x7f7f))
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// The frame decoder's fuzz target: arbitrary bytes never panic or abort.
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = decode_request(Bytes::from(bytes), test_range);
        }

    }
}
