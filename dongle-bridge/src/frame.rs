//! Frames on the serial line (PROTOCOL.md, "Frames"): a version byte, the frame kind, a
//! 16-bit sequence number, the payload and a CRC-32C over all of it, COBS-encoded and ended
//! by a zero byte. A frame whose CRC, version or kind is wrong is dropped, never acted on.
use std::fmt;

/// The protocol version this bridge speaks (PROTOCOL.md).
pub const VERSION: u8 = 1;
/// The largest frame before COBS: a 1,024-byte chunk with its header and fields fits.
pub const MAX_FRAME: usize = 1_200;
/// The largest frame on the wire (COBS adds one byte per 254, and the delimiter).
pub const MAX_WIRE: usize = MAX_FRAME + MAX_FRAME / 254 + 2;

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

pub fn crc32c(bytes: &[u8]) -> u32 {
    CRC32C.checksum(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Bridge → station: a command; answered by a response with the same sequence number.
    Command = 1,
    /// Station → bridge: the answer to the command with the same sequence number.
    Response = 2,
    /// Station → bridge: something happened (dongle inserted, removed, station booted);
    /// acknowledged by an `Ack` with the same sequence number.
    Event = 3,
    /// Bridge → station: the event with this sequence number arrived.
    Ack = 4,
}

impl Kind {
    fn from_byte(b: u8) -> Option<Kind> {
        Some(match b {
            1 => Kind::Command,
            2 => Kind::Response,
            3 => Kind::Event,
            4 => Kind::Ack,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: Kind,
    pub seq: u16,
    pub payload: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// Not valid COBS (a damaged byte).
    Cobs,
    TooShort(usize),
    TooLong(usize),
    /// The CRC-32C does not match: line noise.
    Crc {
        expected: u32,
        found: u32,
    },
    Version(u8),
    Kind(u8),
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::Cobs => write!(f, "not a COBS frame"),
            FrameError::TooShort(n) => write!(f, "a frame of {n} bytes is too short"),
            FrameError::TooLong(n) => write!(f, "a frame of {n} bytes is too long"),
            FrameError::Crc { expected, found } => {
                write!(f, "bad CRC-32C: {found:#010x}, computed {expected:#010x}")
            }
            FrameError::Version(v) => write!(f, "protocol version {v} is not {VERSION}"),
            FrameError::Kind(k) => write!(f, "unknown frame kind {k}"),
        }
    }
}

impl Frame {
    pub fn new(kind: Kind, seq: u16, payload: Vec<u8>) -> Frame {
        Frame { kind, seq, payload }
    }

    /// The bytes on the wire: COBS of (version, kind, seq, payload, CRC-32C), then a zero.
    pub fn encode(&self) -> Vec<u8> {
        assert!(
            self.payload.len() + 8 <= MAX_FRAME,
            "a payload of {} bytes does not fit a frame",
            self.payload.len()
        );
        let mut raw = Vec::with_capacity(self.payload.len() + 8);
        raw.push(VERSION);
        raw.push(self.kind as u8);
        raw.extend_from_slice(&self.seq.to_le_bytes());
        raw.extend_from_slice(&self.payload);
        let crc = crc32c(&raw);
        raw.extend_from_slice(&crc.to_le_bytes());
        let mut wire = cobs::encode_vec(&raw);
        wire.push(0);
        wire
    }

    /// One frame from its wire bytes without the closing zero.
    pub fn decode(wire: &[u8]) -> Result<Frame, FrameError> {
        if wire.len() > MAX_WIRE {
            return Err(FrameError::TooLong(wire.len()));
        }
        let raw = cobs::decode_vec(wire).map_err(|_| FrameError::Cobs)?;
        if raw.len() < 8 {
            return Err(FrameError::TooShort(raw.len()));
        }
        let (body, crc) = raw.split_at(raw.len() - 4);
        let found = u32::from_le_bytes(crc.try_into().expect("4 bytes"));
        let expected = crc32c(body);
        if found != expected {
            return Err(FrameError::Crc { expected, found });
        }
        if body[0] != VERSION {
            return Err(FrameError::Version(body[0]));
        }
        let kind = Kind::from_byte(body[1]).ok_or(FrameError::Kind(body[1]))?;
        Ok(Frame {
            kind,
            seq: u16::from_le_bytes([body[2], body[3]]),
            payload: body[4..].to_vec(),
        })
    }
}

/// Cuts a byte stream into frames at zero bytes. Bytes before the first zero after a start
/// (a frame begun before we listened) arrive as a damaged frame and are dropped.
#[derive(Default)]
pub struct Deframer {
    buf: Vec<u8>,
    overflow: bool,
}

impl Deframer {
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<Result<Frame, FrameError>>) {
        for &b in bytes {
            if b == 0 {
                if self.overflow {
                    out.push(Err(FrameError::TooLong(self.buf.len())));
                } else if !self.buf.is_empty() {
                    out.push(Frame::decode(&self.buf));
                }
                self.buf.clear();
                self.overflow = false;
            } else if self.buf.len() < MAX_WIRE {
                self.buf.push(b);
            } else {
                self.overflow = true;
            }
        }
    }

    /// Forgets a partial frame (the line was reopened).
    pub fn reset(&mut self) {
        self.buf.clear();
        self.overflow = false;
    }
}

/// Writes a payload's fields (PROTOCOL.md, "Fields"): integers little-endian, byte strings
/// and texts with a 16-bit length first.
#[derive(Default)]
pub struct Writer(pub Vec<u8>);

impl Writer {
    pub fn new(first: u8) -> Writer {
        Writer(vec![first])
    }
    pub fn u8(mut self, v: u8) -> Self {
        self.0.push(v);
        self
    }
    pub fn u16(mut self, v: u16) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u32(mut self, v: u32) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn u64(mut self, v: u64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn i64(mut self, v: i64) -> Self {
        self.0.extend_from_slice(&v.to_le_bytes());
        self
    }
    pub fn bytes(mut self, v: &[u8]) -> Self {
        let n = u16::try_from(v.len()).expect("a field longer than 65,535 bytes");
        self.0.extend_from_slice(&n.to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
    pub fn str(self, v: &str) -> Self {
        self.bytes(v.as_bytes())
    }
    pub fn done(self) -> Vec<u8> {
        self.0
    }
}

/// A field missing or malformed in a payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Reader<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(b: &'a [u8]) -> Reader<'a> {
        Reader { b, pos: 0 }
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], FieldError> {
        if self.b.len() - self.pos < n {
            return Err(FieldError(format!(
                "the payload ends at byte {} where {n} more were expected",
                self.b.len()
            )));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    pub fn u8(&mut self) -> Result<u8, FieldError> {
        Ok(self.take(1)?[0])
    }
    pub fn u16(&mut self) -> Result<u16, FieldError> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().expect("2")))
    }
    pub fn u32(&mut self) -> Result<u32, FieldError> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4")))
    }
    pub fn u64(&mut self) -> Result<u64, FieldError> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    pub fn i64(&mut self) -> Result<i64, FieldError> {
        Ok(i64::from_le_bytes(self.take(8)?.try_into().expect("8")))
    }
    pub fn bytes(&mut self) -> Result<&'a [u8], FieldError> {
        let n = self.u16()? as usize;
        self.take(n)
    }
    pub fn str(&mut self) -> Result<String, FieldError> {
        String::from_utf8(self.bytes()?.to_vec())
            .map_err(|_| FieldError("a text field is not UTF-8".into()))
    }
    /// The payload must end here (a longer one is from another version).
    pub fn end(&self) -> Result<(), FieldError> {
        if self.pos == self.b.len() {
            Ok(())
        } else {
            Err(FieldError(format!(
                "{} bytes left over in the payload",
                self.b.len() - self.pos
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deframe(bytes: &[u8]) -> Vec<Result<Frame, FrameError>> {
        let mut d = Deframer::default();
        let mut out = vec![];
        d.push(bytes, &mut out);
        out
    }

    #[test]
    fn a_frame_survives_the_wire_and_has_no_zero_inside() {
        let f = Frame::new(Kind::Command, 513, vec![0, 1, 0, 0, 255, 0]);
        let wire = f.encode();
        assert_eq!(wire.last(), Some(&0));
        assert!(!wire[..wire.len() - 1].contains(&0));
        assert_eq!(deframe(&wire), vec![Ok(f)]);
        // A long payload with zeros every so often, split across reads anywhere.
        let big = Frame::new(
            Kind::Response,
            7,
            (0..1_100).map(|i| (i % 7) as u8).collect(),
        );
        let wire = big.encode();
        let mut d = Deframer::default();
        let mut out = vec![];
        for piece in wire.chunks(13) {
            d.push(piece, &mut out);
        }
        assert_eq!(out, vec![Ok(big)]);
    }

    #[test]
    fn a_damaged_frame_is_refused_by_its_crc() {
        let f = Frame::new(Kind::Event, 9, b"inserted".to_vec());
        let mut wire = f.encode();
        // Flip bits in the payload (not into a zero, which would only cut the frame).
        wire[6] ^= 0x21;
        if wire[6] == 0 {
            wire[6] = 1;
        }
        let got = deframe(&wire);
        assert_eq!(got.len(), 1);
        assert!(matches!(got[0], Err(FrameError::Crc { .. })), "{got:?}");
        // Noise before a frame: one damaged frame, then the good one.
        let mut noisy = vec![0x13, 0x37, 0];
        noisy.extend(f.encode());
        let got = deframe(&noisy);
        assert!(got[0].is_err());
        assert_eq!(got[1], Ok(f));
    }

    #[test]
    fn other_versions_and_kinds_are_refused() {
        let mut raw = vec![2u8, 1, 0, 0];
        raw.extend_from_slice(&crc32c(&raw).to_le_bytes());
        assert_eq!(
            Frame::decode(&cobs::encode_vec(&raw)),
            Err(FrameError::Version(2))
        );
        let mut raw = vec![VERSION, 9, 0, 0];
        raw.extend_from_slice(&crc32c(&raw).to_le_bytes());
        assert_eq!(
            Frame::decode(&cobs::encode_vec(&raw)),
            Err(FrameError::Kind(9))
        );
        // A run of bytes with no zero longer than any frame is dropped whole.
        let mut long = vec![1u8; MAX_WIRE + 10];
        long.push(0);
        assert!(matches!(deframe(&long)[..], [Err(FrameError::TooLong(_))]));
    }

    #[test]
    fn crc32c_is_the_castagnoli_polynomial() {
        // The check value of CRC-32C (iSCSI).
        assert_eq!(crc32c(b"123456789"), 0xe306_9283);
    }

    #[test]
    fn fields_read_back_as_written_and_short_payloads_are_refused() {
        let p = Writer::new(7)
            .u16(513)
            .u32(70_000)
            .i64(-5)
            .str("3-1000001")
            .bytes(&[0, 1, 2])
            .done();
        let mut r = Reader::new(&p);
        assert_eq!(r.u8().unwrap(), 7);
        assert_eq!(r.u16().unwrap(), 513);
        assert_eq!(r.u32().unwrap(), 70_000);
        assert_eq!(r.i64().unwrap(), -5);
        assert_eq!(r.str().unwrap(), "3-1000001");
        assert_eq!(r.bytes().unwrap(), &[0, 1, 2]);
        r.end().unwrap();
        let mut short = Reader::new(&p[..5]);
        short.u8().unwrap();
        short.u16().unwrap();
        assert!(short.u32().is_err());
    }
}
