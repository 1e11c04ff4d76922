//! One task pair per client connection: the reader decodes frames and dispatches them in
//! arrival order; the writer sends the replies in that same order, awaiting deferred ones
//! (acks=all fsyncs, long-poll fetches) without holding up the reading of later requests.
//!
//! The connection is generic over its transport ([`Transport`]): a TCP stream today, a TLS
//! stream once the security work wraps one. It owns the connection's [`Session`] (what the client
//! said of itself; later its SASL state) and measures every request's latency, from decoded frame
//! to written response, in the broker's `metrics`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use futures_util::StreamExt;
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

use crate::broker::Broker;
use crate::handlers::context::{Listener, Session};
use crate::handlers::{self, api_versions, registry, Reply, RequestContext};
use crate::protocol::{decode_request, encode_response, FrameError};

/// Replies a connection may have outstanding before it stops reading (back-pressure on
/// clients that pipeline deeply).
const MAX_IN_FLIGHT: usize = 64;

/// A byte stream a connection can be served over, split into its two directions.
pub trait Transport: Send + 'static {
    /// The reading half.
    type Read: AsyncRead + Unpin + Send + 'static;
    /// The writing half.
    type Write: AsyncWrite + Unpin + Send + 'static;
    /// Splits the stream.
    fn into_halves(self) -> (Self::Read, Self::Write);
}

impl Transport for TcpStream {
    type Read = tokio::net::tcp::OwnedReadHalf;
    type Write = tokio::net::tcp::OwnedWriteHalf;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        // Owned halves of a socket: no lock between the reader and the writer.
        self.into_split()
    }
}

/// Any other async stream (a TLS stream, an in-memory duplex in tests), split with
/// `tokio::io::split`.
#[derive(Debug)]
pub struct Stream<T>(pub T);

impl<T: AsyncRead + AsyncWrite + Send + 'static> Transport for Stream<T> {
    type Read = tokio::io::ReadHalf<T>;
    type Write = tokio::io::WriteHalf<T>;
    fn into_halves(self) -> (Self::Read, Self::Write) {
        tokio::io::split(self.0)
    }
}

/// A reply in its place in the response order.
struct Outgoing {
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    started: Instant,
    reply: Reply,
}

/// Serves one client until it disconnects, sends something we close on, or shutdown.
pub async fn serve<T: Transport>(
    transport: T,
    peer: Option<SocketAddr>,
    listener: Arc<Listener>,
    broker: Broker,
    mut shutdown: watch::Receiver<bool>,
) {
    let (read_half, write_half) = transport.into_halves();
    let codec = LengthDelimitedCodec::builder()
        .length_field_length(4)
        .max_frame_length(broker.config.socket_request_max_bytes)
        .new_codec();
    let mut frames = FramedRead::new(read_half, codec);
    let (tx, rx) = mpsc::channel::<Outgoing>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(write_loop(write_half, rx, broker.clone()));
    let mut session = Session::new();
    loop {
        let frame = tokio::select! {
            frame = frames.next() => frame,
            _ = shutdown.changed() => break,
        };
        let bytes = match frame {
            None => break,
            Some(Ok(bytes)) => bytes.freeze(),
            Some(Err(e)) => {
                // An oversized frame, or a half frame at EOF: close this connection only.
                tracing::debug!(?peer, error = %e, "closing connection on framing error");
                break;
            }
        };
        let started = Instant::now();
        let out = match decode_request(bytes, registry::range_of) {
            Ok(request) => {
                if let RequestKind::ApiVersions(req) = &request.body {
                    if !req.client_software_name.is_empty() {
                        session.client_software = Some((
                            req.client_software_name.to_string(),
                            req.client_software_version.to_string(),
                        ));
                    }
                }
                let version = request.header.request_api_version;
                let ctx = RequestContext {
                    broker: &broker,
                    header: &request.header,
                    api_key: request.api_key,
                    version,
                    peer,
                    listener: &listener,
                    session: &session,
                };
                let reply = match handlers::dispatch(&ctx, request.body) {
                    Reply::Serial(work) => work.await,
                    reply => reply,
                };
                Outgoing {
                    api_key: request.api_key,
                    version,
                    correlation_id: request.header.correlation_id,
                    started,
                    reply,
                }
            }
            Err(FrameError::ApiVersionsFallback {
                correlation_id,
                version,
            }) => {
                tracing::debug!(
                    ?peer,
                    version,
                    "ApiVersions at an unknown version, answering v0"
                );
                Outgoing {
                    api_key: ApiKey::ApiVersions,
                    version: 0,
                    correlation_id,
                    started,
                    reply: Reply::now(ResponseKind::ApiVersions(
                        api_versions::unsupported_version(),
                    )),
                }
            }
            Err(e) => {
                tracing::info!(?peer, error = %e, "closing connection");
                break;
            }
        };
        let close = matches!(out.reply, Reply::Close);
        if tx.send(out).await.is_err() || close {
            break;
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Writes replies in request order, recording each request's latency once its response is
/// written; ends when the reader is done or a write fails.
async fn write_loop<W: AsyncWrite + Unpin>(
    mut socket: W,
    mut rx: mpsc::Receiver<Outgoing>,
    broker: Broker,
) {
    while let Some(out) = rx.recv().await {
        let body = match out.reply {
            Reply::Now(body) => *body,
            Reply::Later(fut) => fut.await,
            Reply::Nothing => {
                broker.metrics.record(out.api_key, out.started.elapsed());
                continue;
            }
            Reply::Close => break,
            // Resolved by the reader before it queued the reply; answered the same way.
            Reply::Serial(work) => match work.await {
                Reply::Now(body) => *body,
                Reply::Later(fut) => fut.await,
                _ => break,
            },
        };
        let frame = match encode_response(out.api_key, out.version, out.correlation_id, &body) {
            Ok(frame) => frame,
            Err(e) => {
                tracing::error!(error = %e, "cannot encode response; closing connection");
                break;
            }
        };
        if socket.write_all(&frame).await.is_err() {
            break;
        }
        broker.metrics.record(out.api_key, out.started.elapsed());
    }
    let _ = socket.shutdown().await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::{BufMut, BytesMut};
    use kafka_protocol::messages::{ApiVersionsRequest, RequestHeader, RequestKind};
    use kafka_protocol::protocol::Encodable;
    use tokio::io::AsyncReadExt;

    /// A request frame with its size prefix.
    fn frame(key: ApiKey, version: i16, correlation_id: i32, body: RequestKind) -> Vec<u8> {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id);
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, key.request_header_version(version))
            .unwrap();
        body.encode(&mut buf, version).unwrap();
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        buf.to_vec()
    }

    /// The connection serves any async stream: here an in-memory duplex, as a TLS stream
    /// will be. Pipelined requests are answered in order and every one is timed.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serves_any_transport_in_order_and_times_every_request() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = std::collections::BTreeMap::new();
        s.insert("log.dirs".to_string(), dir.path().display().to_string());
        s.insert(
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        );
        let config = crate::config::Config::from_settings(s).unwrap();
        let server = crate::server::start(config).await.unwrap();
        let broker = server.broker.clone();
        let (mut client, served) = tokio::io::duplex(1 << 16);
        let (_tx, rx) = watch::channel(false);
        let listener = broker.listeners[0].clone();
        let task = tokio::spawn(serve(Stream(served), None, listener, broker.clone(), rx));
        let mut request = ApiVersionsRequest::default();
        request.client_software_name = "duplex-test".into();
        request.client_software_version = "1".into();
        let mut pipelined = frame(
            ApiKey::ApiVersions,
            3,
            11,
            RequestKind::ApiVersions(request),
        );
        pipelined.extend(frame(
            ApiKey::Metadata,
            12,
            12,
            RequestKind::Metadata(Default::default()),
        ));
        client.write_all(&pipelined).await.unwrap();
        for expected in [11, 12] {
            let len = client.read_i32().await.unwrap();
            let mut body = vec![0u8; len as usize];
            client.read_exact(&mut body).await.unwrap();
            assert_eq!(
                i32::from_be_bytes([body[0], body[1], body[2], body[3]]),
                expected
            );
        }
        // A request is timed once its response is written, which the client can see before
        // the writer records it: wait for the record.
        let mut counted: Vec<(i16, u64)> = Vec::new();
        for _ in 0..200 {
            counted = broker
                .metrics
                .summary()
                .iter()
                .map(|a| (a.api_key, a.count))
                .collect();
            if counted.len() >= 2 {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert!(
            counted.contains(&(ApiKey::ApiVersions as i16, 1)),
            "{counted:?}"
        );
        assert!(
            counted.contains(&(ApiKey::Metadata as i16, 1)),
            "{counted:?}"
        );
        // An unknown API closes this connection only.
        client
            .write_all(&[0, 0, 0, 8, 0x7f, 0x7f, 0, 0, 0, 0, 0, 1])
            .await
            .unwrap();
        assert_eq!(client.read(&mut [0u8; 1]).await.unwrap(), 0, "closed");
        task.await.unwrap();
        server.shutdown().await;
    }
}
