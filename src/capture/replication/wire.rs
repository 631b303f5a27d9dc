//! A walsender connection built by hand on `postgres-protocol`'s codecs: startup with
//! `replication=database`, authentication, TLS, simple queries and CopyBoth framing.
//! (tokio-postgres has no CopyBoth support; postgres-protocol rejects the `W` message.)

use std::sync::Arc;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use fallible_iterator::FallibleIterator;
use postgres_protocol::authentication::{md5_hash, sasl};
use postgres_protocol::message::{backend, frontend};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::postgres::client_config;
use crate::postgres::{
    ANSWER_TIMEOUT, DatabaseUrl, Host, SERVER_SIDE_KEEPALIVE_OPTIONS, SslMode, Transport, Watched,
    open_socket, silent_peer,
};

pub use errors::ConnectionError;
use errors::ServerError;
pub(crate) use oversized::READ_BUFFER_BYTES;
use oversized::Skipping;

const COPY_BOTH_RESPONSE_TAG: u8 = b'W';
/// The most the read buffer grows ahead of the bytes received for a message still
/// arriving; beyond it, it grows as they arrive.
const MAX_READ_AHEAD: usize = 1 << 16;

/// The text rows of a simple query.
#[derive(Debug, Default)]
pub struct QueryResult {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Option<String>>>,
}

impl QueryResult {
    /// The value of `column` in the first row.
    pub fn first(&self, column: &str) -> Option<&str> {
        let index = self.columns.iter().position(|name| name == column)?;
        self.rows.first()?.get(index)?.as_deref()
    }
}

enum Incoming {
    CopyBothResponse,
    Message(backend::Message),
    /// An oversized CopyData message is next: not to be buffered whole.
    OversizedAhead,
}

/// What the server sends inside CopyBoth mode.
#[derive(Debug)]
pub enum CopyMessage {
    Data(Bytes),
    /// A CopyData message larger than the connection's limit: its first bytes, and its
    /// whole length. The rest was read and dropped as it arrived, never held.
    Oversized {
        head: Bytes,
        length: usize,
    },
    Done,
}

pub struct ReplicationConnection {
    transport: Watched<Transport>,
    read_buffer: BytesMut,
    write_buffer: BytesMut,
    /// The server process of this session (from BackendKeyData).
    backend_pid: Option<i32>,
    /// CopyData bodies longer than this are read past (see [`CopyMessage::Oversized`]).
    max_copy_data: usize,
    skipping: Option<Skipping>,
}

impl ReplicationConnection {
    /// Opens a logical walsender session with session settings pinned so that the text
    /// form of every value is stable (see value.rs).
    pub async fn connect(
        url: &DatabaseUrl,
        application_name: &str,
    ) -> Result<ReplicationConnection, ConnectionError> {
        let transport = open_transport(url).await?;
        let mut connection = ReplicationConnection {
            transport,
            read_buffer: BytesMut::with_capacity(READ_BUFFER_BYTES),
            write_buffer: BytesMut::with_capacity(1024),
            backend_pid: None,
            max_copy_data: usize::MAX,
            skipping: None,
        };
        let application_name = url.application_name.as_deref().unwrap_or(application_name);
        let parameters = [
            ("user", url.user.as_str()),
            ("database", url.dbname.as_str()),
            ("replication", "database"),
            ("application_name", application_name),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO"),
            ("TimeZone", "UTC"),
            ("IntervalStyle", "iso_8601"),
            ("extra_float_digits", "3"),
            ("bytea_output", "hex"),
            ("options", SERVER_SIDE_KEEPALIVE_OPTIONS),
        ];
        frontend::startup_message(parameters, &mut connection.write_buffer)?;
        connection.flush().await?;
        connection.authenticate(url).await?;
        connection.wait_until_ready().await?;
        Ok(connection)
    }

    async fn authenticate(&mut self, url: &DatabaseUrl) -> Result<(), ConnectionError> {
        let password = || {
            url.password
                .as_deref()
                .map(str::as_bytes)
                .ok_or(ConnectionError::PasswordMissing)
        };
        loop {
            match self.read_message().await? {
                backend::Message::AuthenticationOk => return Ok(()),
                backend::Message::AuthenticationCleartextPassword => {
                    frontend::password_message(password()?, &mut self.write_buffer)?;
                    self.flush().await?;
                }
                backend::Message::AuthenticationMd5Password(body) => {
                    let hash = md5_hash(url.user.as_bytes(), password()?, body.salt());
                    frontend::password_message(hash.as_bytes(), &mut self.write_buffer)?;
                    self.flush().await?;
                }
                backend::Message::AuthenticationSasl(body) => {
                    let mut mechanisms = body.mechanisms();
                    let mut offers_scram = false;
                    while let Some(mechanism) = mechanisms.next()? {
                        offers_scram |= mechanism == sasl::SCRAM_SHA_256;
                    }
                    if !offers_scram {
                        return Err(ConnectionError::UnsupportedAuthentication(
                            "SASL without SCRAM-SHA-256",
                        ));
                    }
                    self.scram(password()?).await?;
                }
                backend::Message::AuthenticationKerberosV5 => {
                    return Err(ConnectionError::UnsupportedAuthentication("Kerberos"));
                }
                backend::Message::AuthenticationGss
                | backend::Message::AuthenticationGssContinue(_) => {
                    return Err(ConnectionError::UnsupportedAuthentication("GSSAPI"));
                }
                backend::Message::AuthenticationSspi => {
                    return Err(ConnectionError::UnsupportedAuthentication("SSPI"));
                }
                backend::Message::ErrorResponse(body) => {
                    return Err(ConnectionError::Server(ServerError::from_body(&body)));
                }
                _ => return Err(unexpected("during authentication")),
            }
        }
    }

    async fn scram(&mut self, password: &[u8]) -> Result<(), ConnectionError> {
        // Channel binding is not offered: the gs2 header then says so, which every
        // server accepts for plain SCRAM-SHA-256.
        let mut scram = sasl::ScramSha256::new(password, sasl::ChannelBinding::unsupported());
        frontend::sasl_initial_response(
            sasl::SCRAM_SHA_256,
            scram.message(),
            &mut self.write_buffer,
        )?;
        self.flush().await?;
        match self.read_message().await? {
            backend::Message::AuthenticationSaslContinue(body) => {
                scram.update(body.data()).map_err(ConnectionError::Scram)?;
            }
            backend::Message::ErrorResponse(body) => {
                return Err(ConnectionError::Server(ServerError::from_body(&body)));
            }
            _ => return Err(unexpected("during SCRAM authentication")),
        }
        frontend::sasl_response(scram.message(), &mut self.write_buffer)?;
        self.flush().await?;
        match self.read_message().await? {
            backend::Message::AuthenticationSaslFinal(body) => {
                scram.finish(body.data()).map_err(ConnectionError::Scram)
            }
            backend::Message::ErrorResponse(body) => {
                Err(ConnectionError::Server(ServerError::from_body(&body)))
            }
            _ => Err(unexpected("during SCRAM authentication")),
        }
    }

    async fn wait_until_ready(&mut self) -> Result<(), ConnectionError> {
        loop {
            match self.read_message().await? {
                backend::Message::ReadyForQuery(_) => return Ok(()),
                backend::Message::ErrorResponse(body) => {
                    return Err(ConnectionError::Server(ServerError::from_body(&body)));
                }
                backend::Message::BackendKeyData(body) => {
                    self.backend_pid = Some(body.process_id())
                }
                _ => {}
            }
        }
    }

    /// The server process serving this session, when the server said.
    pub fn backend_pid(&self) -> Option<i32> {
        self.backend_pid
    }

    /// Runs one command with the simple query protocol, the only one a walsender accepts.
    pub async fn simple_query(&mut self, sql: &str) -> Result<QueryResult, ConnectionError> {
        frontend::query(sql, &mut self.write_buffer)?;
        self.flush().await?;
        let mut result = QueryResult::default();
        let mut failure = None;
        loop {
            match self.read_message().await? {
                backend::Message::RowDescription(body) => {
                    result.columns = body
                        .fields()
                        .map(|field| Ok(field.name().to_string()))
                        .collect()?;
                }
                backend::Message::DataRow(body) => {
                    let buffer = body.buffer();
                    let row = body
                        .ranges()
                        .map(|range| {
                            Ok(range
                                .map(|range| String::from_utf8_lossy(&buffer[range]).into_owned()))
                        })
                        .collect()?;
                    result.rows.push(row);
                }
                backend::Message::ErrorResponse(body) => {
                    failure = Some(ServerError::from_body(&body));
                }
                backend::Message::ReadyForQuery(_) => {
                    return match failure {
                        Some(error) => Err(ConnectionError::Server(error)),
                        None => Ok(result),
                    };
                }
                _ => {}
            }
        }
    }

    /// Sends a command that switches the connection into CopyBoth mode
    /// (`START_REPLICATION`), and waits until it has.
    pub async fn start_copy_both(&mut self, sql: &str) -> Result<(), ConnectionError> {
        frontend::query(sql, &mut self.write_buffer)?;
        self.flush().await?;
        loop {
            match self.read_incoming().await? {
                Incoming::CopyBothResponse => return Ok(()),
                Incoming::Message(backend::Message::ErrorResponse(body)) => {
                    let error = ServerError::from_body(&body);
                    // The server follows an error with ReadyForQuery; consume it so the
                    // connection could be reused.
                    self.wait_until_ready().await?;
                    return Err(ConnectionError::Server(error));
                }
                Incoming::Message(_) => {}
                Incoming::OversizedAhead => return Err(unexpected("before CopyBoth mode")),
            }
        }
    }

    /// Reads the next CopyData payload. Cancel-safe: partial frames stay in the buffer,
    /// and a message being read past stays so.
    pub async fn read_copy(&mut self) -> Result<CopyMessage, ConnectionError> {
        loop {
            if let Some(oversized) = self.read_past_oversized().await? {
                return Ok(oversized);
            }
            let message = match self.read_incoming().await? {
                Incoming::Message(message) => message,
                Incoming::OversizedAhead => continue,
                Incoming::CopyBothResponse => return Err(unexpected("in CopyBoth mode")),
            };
            match message {
                backend::Message::CopyData(body) => {
                    return Ok(CopyMessage::Data(body.into_bytes()));
                }
                // The server ends the stream with CopyDone, and after it CommandComplete.
                backend::Message::CopyDone
                | backend::Message::CommandComplete(_)
                | backend::Message::ReadyForQuery(_) => return Ok(CopyMessage::Done),
                backend::Message::ErrorResponse(body) => {
                    return Err(ConnectionError::Server(ServerError::from_body(&body)));
                }
                backend::Message::NoticeResponse(_) | backend::Message::ParameterStatus(_) => {}
                _ => return Err(unexpected("in CopyBoth mode")),
            }
        }
    }

    /// Sends a CopyData frame carrying `payload`.
    pub async fn write_copy(&mut self, payload: &[u8]) -> Result<(), ConnectionError> {
        self.write_buffer.put_u8(b'd');
        self.write_buffer.put_i32(4 + payload.len() as i32);
        self.write_buffer.put_slice(payload);
        self.flush().await
    }

    /// Says goodbye politely; errors are irrelevant at this point.
    pub async fn terminate(mut self) {
        frontend::terminate(&mut self.write_buffer);
        let _ = self.flush().await;
        let _ = self.transport.shutdown().await;
    }

    async fn flush(&mut self) -> Result<(), ConnectionError> {
        self.transport.write_all(&self.write_buffer).await?;
        self.write_buffer.clear();
        self.transport.flush().await?;
        Ok(())
    }

    async fn read_message(&mut self) -> Result<backend::Message, ConnectionError> {
        match self.read_incoming().await? {
            Incoming::Message(message) => Ok(message),
            Incoming::CopyBothResponse => Err(unexpected("outside START_REPLICATION")),
            Incoming::OversizedAhead => Err(unexpected("outside CopyBoth mode")),
        }
    }

    async fn read_incoming(&mut self) -> Result<Incoming, ConnectionError> {
        loop {
            // Before parsing: an oversized message that arrived whole in one read (a
            // `max_row` below the read buffer's size) must not be handed on whole.
            if self.oversized_ahead().is_some() {
                return Ok(Incoming::OversizedAhead);
            }
            if let Some(incoming) = parse_buffered(&mut self.read_buffer)? {
                return Ok(incoming);
            }
            if self.transport.read_buf(&mut self.read_buffer).await? == 0 {
                return Err(ConnectionError::Closed);
            }
        }
    }
}

/// The next whole message in `buffer`, or `None` until more bytes arrive.
fn parse_buffered(buffer: &mut BytesMut) -> Result<Option<Incoming>, ConnectionError> {
    let Some(header) = buffer.get(1..5) else {
        return Ok(None);
    };
    let length = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    if length < 4 {
        return Err(ConnectionError::Protocol(format!(
            "a message length of {length}, shorter than the length field itself"
        )));
    }
    let missing = (1 + length).saturating_sub(buffer.len());
    if missing > 0 {
        // postgres-protocol would reserve the whole claimed length at once: a corrupt
        // length field would reserve up to 4 GiB before a byte of it arrived.
        buffer.reserve(missing.min(MAX_READ_AHEAD));
        return Ok(None);
    }
    if buffer[0] == COPY_BOTH_RESPONSE_TAG {
        // The body (format codes of the copied columns) means nothing for replication.
        buffer.advance(1 + length);
        return Ok(Some(Incoming::CopyBothResponse));
    }
    Ok(backend::Message::parse(buffer)?.map(Incoming::Message))
}

fn unexpected(context: &str) -> ConnectionError {
    ConnectionError::Protocol(format!("an unexpected message {context}"))
}

/// The socket with TLS negotiated as `sslmode` asks, watched for a silent peer: the
/// stream asks the server for a keepalive when it has been quiet, so a peer that owes
/// one for [`ANSWER_TIMEOUT`] is dead. The negotiation itself, before the stream is
/// watched, has as long.
async fn open_transport(url: &DatabaseUrl) -> Result<Watched<Transport>, ConnectionError> {
    let socket = open_socket(url).await?;
    let Transport::Tcp(stream) = socket else {
        return Ok(Watched::new(socket, ANSWER_TIMEOUT));
    };
    let Some(config) = client_config(url.sslmode, url.sslrootcert.as_deref())? else {
        return Ok(Watched::new(Transport::Tcp(stream), ANSWER_TIMEOUT));
    };
    let transport = tokio::time::timeout(ANSWER_TIMEOUT, negotiate_tls(url, stream, config))
        .await
        .map_err(|_| ConnectionError::Io(silent_peer(ANSWER_TIMEOUT)))??;
    Ok(Watched::new(transport, ANSWER_TIMEOUT))
}

/// Asks the server for TLS and, if it agrees, does the handshake; a server that refuses
/// is used in plain text only for `sslmode = prefer`.
async fn negotiate_tls(
    url: &DatabaseUrl,
    mut stream: tokio::net::TcpStream,
    config: Arc<rustls::ClientConfig>,
) -> Result<Transport, ConnectionError> {
    let host = match &url.host {
        Host::Tcp(host) => host.as_str(),
        Host::Unix(_) => "localhost",
    };
    let address = format!("{host}:{}", url.port);
    let mut request = BytesMut::new();
    frontend::ssl_request(&mut request);
    stream.write_all(&request).await?;
    let answer = stream.read_u8().await?;
    if answer != b'S' {
        return match url.sslmode {
            SslMode::Prefer => Ok(Transport::Tcp(stream)),
            mode => Err(ConnectionError::TlsRefused {
                address,
                mode: mode.as_str(),
            }),
        };
    }
    let server_name = ServerName::try_from(host.trim_matches(['[', ']']).to_string())
        .map_err(|_| ConnectionError::ServerName(host.to_string()))?;
    let connector = tokio_rustls::TlsConnector::from(config);
    let tls = connector
        .connect(server_name, stream)
        .await
        .map_err(|source| ConnectionError::TlsHandshake { address, source })?;
    Ok(Transport::Tls(Box::new(tls)))
}

#[path = "wire_errors.rs"]
mod errors;
#[path = "wire_oversized.rs"]
mod oversized;

#[cfg(test)]
#[path = "wire_fuzz.rs"]
mod fuzz;

#[cfg(test)]
#[path = "wire_tests.rs"]
mod tests;
