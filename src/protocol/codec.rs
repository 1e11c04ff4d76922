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
