use bytes::BufMut;

use super::*;

/// A CopyData header claiming `length` bytes, followed by `body`.
fn copy_data(length: u32, body: &[u8]) -> BytesMut {
    let mut buffer = BytesMut::new();
    buffer.put_u8(b'd');
    buffer.put_u32(length);
    buffer.put_slice(body);
    buffer
}

// Found by the `copy_both_frames` fuzz target: postgres-protocol reserved the length a
// header claimed before any of it arrived.
#[test]
fn a_huge_length_field_reserves_only_a_bounded_read_ahead() {
    let mut buffer = copy_data(0xFFFF_FFF0, b"wxyz");
    assert!(matches!(parse_buffered(&mut buffer), Ok(None)));
    assert!(
        buffer.capacity() <= 2 * MAX_READ_AHEAD,
        "{}",
        buffer.capacity()
    );
}

#[test]
fn a_message_split_anywhere_is_read_once_whole() {
    let whole = copy_data(4 + 3, b"k12");
    for split in 0..whole.len() {
        let mut buffer = BytesMut::from(&whole[..split]);
        assert!(
            matches!(parse_buffered(&mut buffer), Ok(None)),
            "split at {split}"
        );
        buffer.extend_from_slice(&whole[split..]);
        let Ok(Some(Incoming::Message(backend::Message::CopyData(body)))) =
            parse_buffered(&mut buffer)
        else {
            panic!("split at {split}: no CopyData");
        };
        assert_eq!(body.data(), b"k12");
        assert!(buffer.is_empty());
    }
}

#[test]
fn lengths_shorter_than_the_length_field_are_protocol_errors() {
    for tag in [b'd', COPY_BOTH_RESPONSE_TAG] {
        let mut buffer = BytesMut::new();
        buffer.put_u8(tag);
        buffer.put_u32(3);
        buffer.put_slice(b"\0\0\0");
        let error = parse_buffered(&mut buffer).err().expect("an error");
        assert_eq!(
            error.to_string(),
            "unexpected message from the server: a message length of 3, shorter than the \
             length field itself"
        );
    }
}

#[test]
fn copy_both_response_is_consumed_with_its_body() {
    let mut buffer = BytesMut::from(&b"W\0\0\0\x07\0\0\0d\0\0\0\x05k"[..]);
    assert!(matches!(
        parse_buffered(&mut buffer),
        Ok(Some(Incoming::CopyBothResponse))
    ));
    assert!(matches!(
        parse_buffered(&mut buffer),
        Ok(Some(Incoming::Message(backend::Message::CopyData(_))))
    ));
}

#[tokio::test]
async fn an_oversized_message_that_arrives_whole_is_still_read_past() {
    let (ours, mut theirs) = tokio::net::UnixStream::pair().unwrap();
    let mut connection = ReplicationConnection {
        transport: Watched::new(Transport::Unix(ours), ANSWER_TIMEOUT),
        read_buffer: BytesMut::with_capacity(READ_BUFFER_BYTES),
        write_buffer: BytesMut::new(),
        backend_pid: None,
        max_copy_data: 100,
        skipping: None,
    };
    let mut sent = copy_data(4 + 1_000, &[b'w'; 1_000]);
    sent.extend_from_slice(&copy_data(4 + 3, b"k12"));
    // Both messages are in the socket before the first read: one read takes them whole.
    theirs.write_all(&sent).await.unwrap();
    match connection.read_copy().await.unwrap() {
        CopyMessage::Oversized { head, length } => {
            assert_eq!(length, 1_000);
            assert!(head.len() < 100 && head.iter().all(|byte| *byte == b'w'));
        }
        other => panic!("expected the oversized message to be read past, got {other:?}"),
    }
    match connection.read_copy().await.unwrap() {
        CopyMessage::Data(body) => assert_eq!(&body[..], b"k12"),
        other => panic!("expected the small message, got {other:?}"),
    }
}

/// A server that accepts the connection and never answers the request for TLS (a
/// half-dead host whose kernel still completes handshakes): connecting gives up after
/// the answer timeout instead of waiting forever.
#[tokio::test]
async fn a_server_silent_during_the_tls_negotiation_is_given_up() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let (socket, _) = listener.accept().await.unwrap();
        tokio::time::sleep(ANSWER_TIMEOUT * 2).await;
        drop(socket);
    });
    let url = DatabaseUrl::parse(&format!(
        "postgres://rowhook@127.0.0.1:{port}/shop?sslmode=require"
    ))
    .unwrap();
    let error = match ReplicationConnection::connect(&url, "rowhook").await {
        Ok(_) => panic!("a silent server cannot be connected to"),
        Err(error) => error,
    };
    assert!(
        error.to_string().contains("did not answer for 30 s"),
        "{error}"
    );
    held.abort();
}
