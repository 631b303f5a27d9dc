//! Fuzz target `pgoutput_decoder`: a sequence of pgoutput messages, each behind a 4-byte
//! big-endian length (the corpus: transactions captured from PostgreSQL 15 with
//! `fuzz/capture-pgoutput.sql`), decoded one after another by one [`ChangeDecoder`], as
//! a replication stream is. Malformed messages and impossible sequences must be errors.

use bytes::Bytes;

use super::ChangeDecoder;
use crate::change::Lsn;
use crate::fuzz::{Target, fuzz, valid_corpus};
use crate::postgres::TypeShape;

/// The user-defined types of the captured tables: the enum `mood` and the composite
/// `address`, with the OIDs PostgreSQL gave them.
const MOOD: u32 = 16_389;
const ADDRESS: u32 = 16_395;

/// Splits the input into messages; the framing is the harness's, so a length that
/// overruns just takes what is left.
fn messages(mut input: &[u8]) -> impl Iterator<Item = &[u8]> {
    std::iter::from_fn(move || {
        if input.is_empty() {
            return None;
        }
        let (header, rest) = input.split_at(input.len().min(4));
        let mut length = [0; 4];
        length[..header.len()].copy_from_slice(header);
        let length = (u32::from_be_bytes(length) as usize).min(rest.len());
        let (message, rest) = rest.split_at(length);
        input = rest;
        Some(message)
    })
}

fn decoder() -> ChangeDecoder {
    let mut decoder = ChangeDecoder::new();
    decoder.types_mut().learn([
        (MOOD, TypeShape::Text),
        (
            ADDRESS,
            TypeShape::Composite {
                fields: vec![("street".to_string(), 25), ("zip".to_string(), 23)],
            },
        ),
    ]);
    decoder
}

fn decode_stream(input: &[u8]) -> Result<(), String> {
    let mut decoder = decoder();
    for (index, message) in messages(input).enumerate() {
        match decoder.decode_bytes(Lsn(index as u64), Bytes::copy_from_slice(message)) {
            Ok(decoded) => drop(decoded),
            // The stream reconnects after an error; the relations stay known.
            Err(error) => {
                let _ = error.to_string();
                decoder.abandon_transaction();
            }
        }
    }
    Ok(())
}

#[test]
fn pgoutput_decoder() {
    fuzz(Target {
        name: "pgoutput_decoder",
        dictionary: &[
            b"\0\0\0\x0bB",
            b"C\0",
            b"I\0\0@\x0cN",
            b"U\0\0@\x0cK",
            b"U\0\0@\x0cO",
            b"D\0\0@\x0cO",
            b"T\0\0\0\x01\0",
            b"R\0\0@\x0cpublic\0",
            b"Y\0\0@\x05",
            b"M\x01",
            b"N\0\x0b",
            b"t\0\0\0\x02",
            b"b\0\0\0\x01",
            b"n",
            b"u",
            b"\0\0\0\x17\xff\xff\xff\xff",
            b"{\"a\": [1, {\"b\": null}]}",
            b"{\"x y\",z,NULL}",
            b"(\"a,b\",)",
            b"infinity",
            b"-0.0e9999",
            b"\x7f\xff\xff\xff",
            b"\0",
        ],
        max_length: 1 << 16,
        extra_corpus: &[],
        execute: &decode_stream,
    });
}

#[test]
fn the_corpus_streams_decode() {
    for (path, input) in valid_corpus("pgoutput_decoder") {
        let mut decoder = decoder();
        for (index, message) in messages(&input).enumerate() {
            let decoded = decoder.decode_bytes(Lsn(index as u64), Bytes::copy_from_slice(message));
            if let Err(error) = decoded {
                panic!("{} message {index}: {error}", path.display());
            }
        }
    }
}
