//! One connection to one broker: TCP, TLS and SASL as the cluster's settings say, then
//! ApiVersions. Requests go one at a time; the caller puts each under its timeout and drops
//! the connection after any failure, so a half-read response never reaches the next request.
//! Every request sent is counted by API in a [`RequestCounts`] the caller keeps across
//! reconnections.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::ServerName;

use super::messages::api_versions_request::ApiVersionsRequest;
use super::messages::api_versions_response::ApiVersionsResponse;
use super::messages::request_header::RequestHeader;
use super::messages::response_header::ResponseHeader;
use super::messages::sasl_authenticate_request::SaslAuthenticateRequest;
use super::messages::sasl_handshake_request::SaslHandshakeRequest;
use super::sasl::{Mechanism, Scram, plain};
use super::writer::Writer;
use super::{Message, Request, negotiate, tls};
use crate::connection::{KafkaConnection, SecurityProtocol};
use crate::wire::{DecodeError, Reader};

/// `client.id` the brokers see.
const CLIENT_ID: &str = "kstreams-operator";
/// The largest response accepted: a corrupt size must not make us allocate gigabytes.
const MAX_RESPONSE: usize = 256 * 1024 * 1024;
/// ApiVersions' key, and the error a broker answers a too-new ApiVersions with.
const API_VERSIONS: i16 = 18;
const UNSUPPORTED_VERSION: i16 = 35;

/// Why a wire request failed.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub(crate) enum WireError {
    /// TCP connect or I/O failed.
    #[error("{0}")]
    Io(String),
    /// The TLS handshake or settings failed.
    #[error("TLS: {0}")]
    Tls(String),
    /// SASL authentication failed.
    #[error("SASL: {0}")]
    Sasl(String),
    /// The connection's own settings are unusable (a malformed PEM, an unknown mechanism):
    /// nothing was sent.
    #[error("{0}")]
    Config(String),
    /// The broker speaks no version of an API we know.
    #[error(
        "the broker supports no version of {0} this operator speaks (a broker older than Kafka 4.0?)"
    )]
    Unsupported(&'static str),
    /// The response could not be read.
    #[error("undecodable {api} response: {source}")]
    Decode {
        /// The API.
        api: &'static str,
        /// Why.
        source: DecodeError,
    },
    /// The response answers another request.
    #[error("response correlation id {got}, expected {expected}")]
    Correlation {
        /// Received.
        got: i32,
        /// Sent.
        expected: i32,
    },
}

/// Reads one response frame: its int32 size, then that many bytes. The buffer grows with the
/// bytes that arrive rather than with the size announced, so a corrupt or hostile size costs
/// no more memory than the data actually sent.
pub(crate) async fn read_frame<I: AsyncRead + Unpin + ?Sized>(
    stream: &mut I,
) -> Result<Vec<u8>, WireError> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size).await.map_err(io)?;
    let size = usize::try_from(i32::from_be_bytes(size))
        .ok()
        .filter(|s| *s <= MAX_RESPONSE)
        .ok_or_else(|| WireError::Io("the broker sent an invalid response size".into()))?;
    let mut out = Vec::new();
    let read = (&mut *stream)
        .take(size as u64)
        .read_to_end(&mut out)
        .await
        .map_err(io)?;
    if read < size {
        return Err(WireError::Io(format!(
            "the connection closed {read} bytes into a {size}-byte response"
        )));
    }
    Ok(out)
}

/// The response header version of `R`'s response at `version`.
pub(crate) fn response_header_version<R: Request>(version: i16) -> i16 {
    // ApiVersions answers with response header v0 whatever the version, so that a client
    // can read it before it knows which versions the broker speaks.
    i16::from(R::flexible(version) && R::API_KEY != API_VERSIONS)
}

/// Decodes a response frame to `R` at `version`: the response header, which must answer
/// request `correlation`, then the body.
pub(crate) fn decode_response<R: Request>(
    frame: &[u8],
    version: i16,
    correlation: i32,
) -> Result<R::Response, WireError> {
    let decode = |source| WireError::Decode {
        api: R::NAME,
        source,
    };
    let mut r = Reader::new(frame);
    let header =
        ResponseHeader::decode(&mut r, response_header_version::<R>(version)).map_err(decode)?;
    if header.correlation_id != correlation {
        return Err(WireError::Correlation {
            got: header.correlation_id,
            expected: correlation,
        });
    }
    <R::Response as Message>::decode(&mut r, version).map_err(decode)
}

trait Io: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Io for T {}

/// One slot per API key Kafka has defined so far (89 is StreamsGroupDescribe), with room.
const API_KEYS: usize = 128;

/// Requests sent to one broker, by API: an atomic add per request, read by tests and the
/// benchmark without stopping anything.
pub(crate) struct RequestCounts {
    counts: [AtomicU64; API_KEYS],
    names: [OnceLock<&'static str>; API_KEYS],
}

impl Default for RequestCounts {
    fn default() -> Self {
        Self {
            counts: std::array::from_fn(|_| AtomicU64::new(0)),
            names: std::array::from_fn(|_| OnceLock::new()),
        }
    }
}

impl RequestCounts {
    /// Counts one request of `R`.
    fn add<R: Request>(&self) {
        // Keys past the table share its last slot rather than go uncounted.
        let i = usize::try_from(R::API_KEY).map_or(API_KEYS - 1, |k| k.min(API_KEYS - 1));
        self.names[i].get_or_init(|| R::NAME.strip_suffix("Request").unwrap_or(R::NAME));
        self.counts[i].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests sent so far by API name (`Metadata`, `OffsetFetch`, ...), those never sent
    /// left out.
    pub(crate) fn snapshot(&self) -> BTreeMap<&'static str, u64> {
        self.names
            .iter()
            .zip(&self.counts)
            .filter_map(|(name, n)| Some((*name.get()?, n.load(Ordering::Relaxed))))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

/// A connection, authenticated, with the broker's API versions.
pub(crate) struct Broker {
    io: Box<dyn Io>,
    correlation: i32,
    versions: BTreeMap<i16, (i16, i16)>,
    counts: Arc<RequestCounts>,
}

fn io(e: std::io::Error) -> WireError {
    WireError::Io(e.to_string())
}

impl Broker {
    /// Connects to `address` (`host:port`) with `conn`'s security settings; every request,
    /// the handshake's included, is counted in `counts`.
    pub(crate) async fn connect(
        address: &str,
        conn: &KafkaConnection,
        counts: Arc<RequestCounts>,
    ) -> Result<Self, WireError> {
        let tcp = TcpStream::connect(address)
            .await
            .map_err(|e| WireError::Io(format!("connecting to {address}: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let protocol = conn.protocol();
        let io: Box<dyn Io> = match protocol {
            SecurityProtocol::Ssl | SecurityProtocol::SaslSsl => {
                let host = address
                    .rsplit_once(':')
                    .map_or(address, |(h, _)| h)
                    .trim_start_matches('[')
                    .trim_end_matches(']');
                let name = ServerName::try_from(host.to_string())
                    .map_err(|e| WireError::Tls(format!("server name {host}: {e}")))?;
                let connector = tls::connector(conn).map_err(WireError::Config)?;
                Box::new(
                    connector
                        .connect(name, tcp)
                        .await
                        .map_err(|e| WireError::Tls(format!("handshake with {address}: {e}")))?,
                )
            }
            _ => Box::new(tcp),
        };
        let mut broker = Self {
            io,
            correlation: 0,
            versions: BTreeMap::new(),
            counts,
        };
        broker.api_versions().await?;
        if matches!(
            protocol,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        ) {
            broker.authenticate(conn).await?;
        }
        Ok(broker)
    }

    /// The version of `R` both sides speak.
    pub(crate) fn version<R: Request>(&self) -> Result<i16, WireError> {
        self.versions
            .get(&R::API_KEY)
            .and_then(|b| negotiate(R::VERSIONS, *b))
            .ok_or(WireError::Unsupported(R::NAME))
    }

    /// Sends `request` at the negotiated version and reads its response.
    pub(crate) async fn send<R: Request>(&mut self, request: &R) -> Result<R::Response, WireError> {
        self.send_from(request, R::VERSIONS.0).await
    }

    /// Sends `request` at the negotiated version, which must be at least `min`: the version
    /// from which the request's fields mean what the caller filled in (e.g. several groups
    /// in one OffsetFetch from version 8).
    pub(crate) async fn send_from<R: Request>(
        &mut self,
        request: &R,
        min: i16,
    ) -> Result<R::Response, WireError> {
        let version = self.version::<R>()?;
        if version < min {
            return Err(WireError::Unsupported(R::NAME));
        }
        self.send_at(request, version).await
    }

    /// Sends `request` at `version`.
    pub(crate) async fn send_at<R: Request>(
        &mut self,
        request: &R,
        version: i16,
    ) -> Result<R::Response, WireError> {
        let mut body = Writer::new();
        request.encode(&mut body, version);
        let flexible = R::flexible(version);
        self.counts.add::<R>();
        let bytes = self
            .round_trip(R::API_KEY, version, flexible, &body.into_bytes())
            .await?;
        decode_response::<R>(&bytes, version, self.correlation)
    }

    async fn round_trip(
        &mut self,
        api_key: i16,
        version: i16,
        flexible: bool,
        body: &[u8],
    ) -> Result<Vec<u8>, WireError> {
        self.correlation = self.correlation.wrapping_add(1);
        let header = RequestHeader {
            request_api_key: api_key,
            request_api_version: version,
            correlation_id: self.correlation,
            client_id: Some(CLIENT_ID.into()),
        };
        let mut w = Writer::new();
        header.encode(&mut w, if flexible { 2 } else { 1 });
        let mut frame = w.into_bytes();
        frame.extend_from_slice(body);
        let size =
            i32::try_from(frame.len()).map_err(|_| WireError::Io("request too large".into()))?;
        self.io.write_all(&size.to_be_bytes()).await.map_err(io)?;
        self.io.write_all(&frame).await.map_err(io)?;
        self.io.flush().await.map_err(io)?;
        read_frame(&mut self.io).await
    }

    async fn api_versions(&mut self) -> Result<(), WireError> {
        let request = ApiVersionsRequest {
            client_software_name: CLIENT_ID.into(),
            client_software_version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        };
        // v3 is what every broker since 2.4 speaks; one that knows only older versions
        // answers UNSUPPORTED_VERSION in the v0 layout, with the versions it does speak.
        let mut response = self.send_at(&request, 3).await;
        if let Err(WireError::Decode { .. })
        | Ok(ApiVersionsResponse {
            error_code: UNSUPPORTED_VERSION,
            ..
        }) = &response
        {
            response = self.send_at(&request, 0).await;
        }
        let response = response?;
        if response.error_code != 0 {
            return Err(WireError::Io(format!(
                "ApiVersions failed with error code {}",
                response.error_code
            )));
        }
        self.versions = response
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        Ok(())
    }

    async fn authenticate(&mut self, conn: &KafkaConnection) -> Result<(), WireError> {
        let name = conn.sasl_mechanism.as_deref().unwrap_or("PLAIN");
        let mechanism = Mechanism::parse(name)
            .ok_or_else(|| WireError::Config(format!("unknown SASL mechanism {name}")))?;
        let user = conn.sasl_username.as_deref().unwrap_or_default();
        let password = conn.sasl_password.as_deref().unwrap_or_default();
        let handshake = self
            .send(&SaslHandshakeRequest {
                mechanism: mechanism.name().into(),
            })
            .await?;
        if handshake.error_code != 0 {
            return Err(WireError::Sasl(format!(
                "the broker does not enable {} (it enables {})",
                mechanism.name(),
                handshake.mechanisms.join(", ")
            )));
        }
        match mechanism {
            Mechanism::Plain => {
                self.sasl_step(plain(user, password)).await?;
            }
            Mechanism::ScramSha256 | Mechanism::ScramSha512 => {
                let mut scram = Scram::new(mechanism, user, password).map_err(WireError::Sasl)?;
                let server_first = self.sasl_step(scram.client_first()).await?;
                let client_final = scram.client_final(&server_first).map_err(WireError::Sasl)?;
                let server_final = self.sasl_step(client_final).await?;
                scram.verify(&server_final).map_err(WireError::Sasl)?;
            }
        }
        Ok(())
    }

    async fn sasl_step(&mut self, auth_bytes: Vec<u8>) -> Result<Vec<u8>, WireError> {
        let response = self.send(&SaslAuthenticateRequest { auth_bytes }).await?;
        if response.error_code != 0 {
            return Err(WireError::Sasl(
                response
                    .error_message
                    .unwrap_or_else(|| format!("error code {}", response.error_code)),
            ));
        }
        Ok(response.auth_bytes)
    }
}
