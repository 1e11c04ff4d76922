//! An in-process broker on port 0 and a raw client that speaks frames encoded by the
//! kafka-protocol crate, so every test sees exactly the bytes a real client would send.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rivulet::config::Config;
use rivulet::server::{start_with, ServerHandle, ServerOptions};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A broker running in this process with its own data directory.
pub struct TestBroker {
    pub handle: Option<ServerHandle>,
    pub addr: SocketAddr,
    pub dir: tempfile::TempDir,
    options: ServerOptions,
}

impl TestBroker {
    /// Starts a broker on 127.0.0.1:0 with the given overrides.
    pub async fn start(overrides: &[(&str, &str)]) -> TestBroker {
        TestBroker::start_with(overrides, ServerOptions::default()).await
    }

    /// Starts a broker with an injected clock or authorizer.
    pub async fn start_with(overrides: &[(&str, &str)], options: ServerOptions) -> TestBroker {
        let dir = tempfile::tempdir().expect("tempdir");
        let handle = start_in(&dir, overrides, &options).await;
        let addr = handle.addr;
        TestBroker {
            handle: Some(handle),
            addr,
            dir,
            options,
        }
    }

    /// The running broker's state (in-process: tests may drive its timers).
    pub fn broker(&self) -> &rivulet::broker::Broker {
        &self.handle.as_ref().expect("running").broker
    }

    /// A new raw client connection.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr).await
    }

    /// Shuts the broker down cleanly and starts it again on the same directory (new port).
    pub async fn restart(&mut self, overrides: &[(&str, &str)]) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
        let handle = start_in(&self.dir, overrides, &self.options).await;
        self.addr = handle.addr;
        self.handle = Some(handle);
    }
}

async fn start_in(
    dir: &tempfile::TempDir,
    overrides: &[(&str, &str)],
    options: &ServerOptions,
) -> ServerHandle {
    let mut s = BTreeMap::new();
    s.insert(
        "listeners".to_string(),
        "PLAINTEXT://127.0.0.1:0".to_string(),
    );
    s.insert(
        "advertised.listeners".to_string(),
        "PLAINTEXT://127.0.0.1:0".to_string(),
    );
    s.insert("log.dirs".to_string(), dir.path().display().to_string());
    for (k, v) in overrides {
        s.insert(k.to_string(), v.to_string());
    }
    let config = Config::from_settings(s).expect("config");
    start_with(config, options.clone())
        .await
        .expect("broker starts")
}

/// A raw connection to the broker.
pub struct Client {
    pub stream: TcpStream,
    next_correlation: i32,
}

impl Client {
    pub async fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).await.expect("connect");
        Client {
            stream,
            next_correlation: 1,
        }
    }

    /// Encodes a request frame (size, header, body) at `version`.
    pub fn frame(&mut self, api_key: ApiKey, version: i16, body: &RequestKind) -> (i32, BytesMut) {
        let correlation_id = self.next_correlation;
        self.next_correlation += 1;
        let header = RequestHeader::default()
            .with_request_api_key(api_key as i16)
            .with_request_api_version(version)
            .with_correlation_id(correlation_id)
            .with_client_id(Some(StrBytes::from_static_str("protocol-tests")));
        let mut buf = BytesMut::new();
        buf.put_i32(0);
        header
            .encode(&mut buf, api_key.request_header_version(version))
            .expect("encode header");
        body.encode(&mut buf, version).expect("encode body");
        let len = (buf.len() - 4) as i32;
        buf[0..4].copy_from_slice(&len.to_be_bytes());
        (correlation_id, buf)
    }

    /// Sends raw bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write");
    }

    /// Reads one response frame; None when the broker closed the connection.
    pub async fn read_frame(&mut self) -> Option<Bytes> {
        let fut = async {
            let size = self.stream.read_i32().await.ok()?;
            let mut buf = vec![0u8; size as usize];
            self.stream.read_exact(&mut buf).await.ok()?;
            Some(Bytes::from(buf))
        };
        tokio::time::timeout(Duration::from_secs(20), fut)
            .await
            .expect("response within 20 s")
    }

    /// Sends a request and decodes the response at the same version.
    pub async fn request(
        &mut self,
        api_key: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> ResponseKind {
        let (correlation_id, frame) = self.frame(api_key, version, &body);
        self.send_raw(&frame).await;
        let mut resp = self.read_frame().await.unwrap_or_else(|| {
            panic!("connection closed instead of answering {api_key:?} v{version}")
        });
        decode_response(api_key, version, correlation_id, &mut resp)
    }

    /// True when the broker closes the connection (EOF) within a few seconds.
    pub async fn is_closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        matches!(
            tokio::time::timeout(Duration::from_secs(5), self.stream.read(&mut byte)).await,
            Ok(Ok(0)) | Ok(Err(_))
        )
    }
}

/// Decodes a response frame, checking the correlation id; the whole frame must be consumed.
pub fn decode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    buf: &mut Bytes,
) -> ResponseKind {
    let header_version = if api_key == ApiKey::ApiVersions {
        0
    } else {
        api_key.response_header_version(version)
    };
    let header = ResponseHeader::decode(buf, header_version).expect("response header");
    assert_eq!(header.correlation_id, correlation_id, "correlation id");
    let body = ResponseKind::decode(api_key, buf, version)
        .unwrap_or_else(|e| panic!("decoding {api_key:?} v{version} response: {e}"));
    assert_eq!(
        buf.remaining(),
        0,
        "{api_key:?} v{version}: trailing bytes in response"
    );
    body
}

pub use rivulet::test_support::{batch, batch_with_keys};
