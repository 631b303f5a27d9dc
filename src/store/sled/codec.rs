//! The compact binary encoding of everything the sled backend writes: unsigned LEB128
//! varints, length-prefixed byte strings, and a reader that reports truncation instead
//! of panicking (a torn or foreign value is "corrupt", never a crash).

/// Appends values to a byte buffer.
#[derive(Default)]
pub(super) struct Writer {
    pub(super) bytes: Vec<u8>,
}

impl Writer {
    pub(super) fn with_capacity(capacity: usize) -> Writer {
        Writer {
            bytes: Vec::with_capacity(capacity),
        }
    }

    pub(super) fn byte(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(super) fn varint(&mut self, mut value: u64) {
        while value >= 0x80 {
            self.bytes.push((value as u8) | 0x80);
            value >>= 7;
        }
        self.bytes.push(value as u8);
    }

    pub(super) fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_be_bytes());
    }

    pub(super) fn text(&mut self, text: &str) {
        self.varint(text.len() as u64);
        self.bytes.extend_from_slice(text.as_bytes());
    }

    pub(super) fn optional_text(&mut self, text: Option<&str>) {
        match text {
            Some(text) => {
                self.byte(1);
                self.text(text);
            }
            None => self.byte(0),
        }
    }

    pub(super) fn optional_varint(&mut self, value: Option<u64>) {
        match value {
            Some(value) => {
                self.byte(1);
                self.varint(value);
            }
            None => self.byte(0),
        }
    }
}

/// Why a value could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Truncated;

/// Reads values back in the order they were written.
pub(super) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
}

impl<'a> Reader<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Reader<'a> {
        Reader { bytes, position: 0 }
    }

    pub(super) fn at(bytes: &'a [u8], position: usize) -> Reader<'a> {
        Reader { bytes, position }
    }

    pub(super) fn position(&self) -> usize {
        self.position
    }

    pub(super) fn byte(&mut self) -> Result<u8, Truncated> {
        let value = *self.bytes.get(self.position).ok_or(Truncated)?;
        self.position += 1;
        Ok(value)
    }

    pub(super) fn varint(&mut self) -> Result<u64, Truncated> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            value |= u64::from(byte & 0x7F) << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(Truncated)
    }

    /// A varint that must fit a `usize` and not claim more bytes than there are.
    pub(super) fn length(&mut self) -> Result<usize, Truncated> {
        let length = usize::try_from(self.varint()?).map_err(|_| Truncated)?;
        if length > self.bytes.len().saturating_sub(self.position) {
            return Err(Truncated);
        }
        Ok(length)
    }

    /// A varint that must fit a `usize`: an index, not a length.
    pub(super) fn length_unchecked(&mut self) -> Result<usize, Truncated> {
        usize::try_from(self.varint()?).map_err(|_| Truncated)
    }

    pub(super) fn u32(&mut self) -> Result<u32, Truncated> {
        let bytes = self.slice(4)?;
        Ok(u32::from_be_bytes(bytes.try_into().map_err(|_| Truncated)?))
    }

    pub(super) fn slice(&mut self, length: usize) -> Result<&'a [u8], Truncated> {
        let end = self.position.checked_add(length).ok_or(Truncated)?;
        let slice = self.bytes.get(self.position..end).ok_or(Truncated)?;
        self.position = end;
        Ok(slice)
    }

    pub(super) fn text(&mut self) -> Result<&'a str, Truncated> {
        let length = self.length()?;
        std::str::from_utf8(self.slice(length)?).map_err(|_| Truncated)
    }

    pub(super) fn optional_text(&mut self) -> Result<Option<&'a str>, Truncated> {
        match self.byte()? {
            0 => Ok(None),
            _ => self.text().map(Some),
        }
    }

    pub(super) fn optional_varint(&mut self) -> Result<Option<u64>, Truncated> {
        match self.byte()? {
            0 => Ok(None),
            _ => self.varint().map(Some),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut writer = Writer::default();
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            writer.varint(value);
        }
        writer.text("héllo");
        writer.optional_text(None);
        writer.optional_text(Some(""));
        writer.optional_varint(Some(7));
        writer.u32(9);
        let mut reader = Reader::new(&writer.bytes);
        for value in [0, 1, 127, 128, 300, u64::from(u32::MAX), u64::MAX] {
            assert_eq!(reader.varint(), Ok(value));
        }
        assert_eq!(reader.text(), Ok("héllo"));
        assert_eq!(reader.optional_text(), Ok(None));
        assert_eq!(reader.optional_text(), Ok(Some("")));
        assert_eq!(reader.optional_varint(), Ok(Some(7)));
        assert_eq!(reader.u32(), Ok(9));
        assert_eq!(reader.byte(), Err(Truncated));
    }

    #[test]
    fn truncated_and_hostile_input_is_an_error() {
        let mut writer = Writer::default();
        writer.text("abcdef");
        for end in 0..writer.bytes.len() {
            assert_eq!(Reader::new(&writer.bytes[..end]).text(), Err(Truncated));
        }
        // A length far beyond the value, and a varint that never ends.
        assert_eq!(
            Reader::new(&[0xFF, 0xFF, 0x7F, b'a']).text(),
            Err(Truncated)
        );
        assert_eq!(Reader::new(&[0x80; 20]).varint(), Err(Truncated));
        assert_eq!(
            Reader::new(&[1, 0xC3]).text(),
            Err(Truncated),
            "invalid UTF-8"
        );
    }
}
