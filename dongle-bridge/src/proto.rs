//! The station protocol's messages (PROTOCOL.md, "Commands", "Events", "Errors"): what the
//! bridge asks a station, what a station tells unasked, and the errors it answers with.
use std::fmt;

use crate::frame::{FieldError, Reader, Writer};

/// The largest chunk of an update one `write_chunk` carries.
pub const MAX_CHUNK: u16 = 1_024;

/// Capability bits a station announces in `hello`.
pub mod caps {
    /// Writes resume: `write_begin` answers how much of the same update the station holds.
    pub const RESUME: u32 = 1;
    /// The station has slot LEDs (or a display) that `release` sets.
    pub const RELEASE_LED: u32 = 2;
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    Hello,
    Status,
    ReadInfo {
        slot: u8,
    },
    Trust {
        slot: u8,
        template: Vec<u8>,
    },
    ReadRequest {
        slot: u8,
        firm_code: i64,
        now: i64,
    },
    WriteBegin {
        slot: u8,
        serial: String,
        len: u32,
        crc: u32,
    },
    WriteChunk {
        slot: u8,
        offset: u32,
        data: Vec<u8>,
    },
    WriteCommit {
        slot: u8,
        now: i64,
    },
    ReadReceipt {
        slot: u8,
        firm_code: i64,
        now: i64,
    },
    Release {
        slot: u8,
        serial: String,
        outcome: Outcome,
    },
}

/// What the bridge tells the operator about a dongle it is done with (the slot's LED).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Programmed = 0,
    Refused = 1,
    Failed = 2,
}

impl Outcome {
    fn from_byte(b: u8) -> Result<Outcome, FieldError> {
        Ok(match b {
            0 => Outcome::Programmed,
            1 => Outcome::Refused,
            2 => Outcome::Failed,
            _ => return Err(FieldError(format!("unknown outcome {b}"))),
        })
    }
}

mod op {
    pub const HELLO: u8 = 0x01;
    pub const STATUS: u8 = 0x02;
    pub const READ_INFO: u8 = 0x10;
    pub const TRUST: u8 = 0x11;
    pub const READ_REQUEST: u8 = 0x12;
    pub const WRITE_BEGIN: u8 = 0x20;
    pub const WRITE_CHUNK: u8 = 0x21;
    pub const WRITE_COMMIT: u8 = 0x22;
    pub const READ_RECEIPT: u8 = 0x23;
    pub const RELEASE: u8 = 0x30;
    pub const INSERTED: u8 = 0x80;
    pub const REMOVED: u8 = 0x81;
    pub const BOOTED: u8 = 0x82;
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Hello => "hello",
            Command::Status => "status",
            Command::ReadInfo { .. } => "read_info",
            Command::Trust { .. } => "trust",
            Command::ReadRequest { .. } => "read_request",
            Command::WriteBegin { .. } => "write_begin",
            Command::WriteChunk { .. } => "write_chunk",
            Command::WriteCommit { .. } => "write_commit",
            Command::ReadReceipt { .. } => "read_receipt",
            Command::Release { .. } => "release",
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        match self {
            Command::Hello => Writer::new(op::HELLO).done(),
            Command::Status => Writer::new(op::STATUS).done(),
            Command::ReadInfo { slot } => Writer::new(op::READ_INFO).u8(*slot).done(),
            Command::Trust { slot, template } => {
                Writer::new(op::TRUST).u8(*slot).bytes(template).done()
            }
            Command::ReadRequest {
                slot,
                firm_code,
                now,
            } => Writer::new(op::READ_REQUEST)
                .u8(*slot)
                .i64(*firm_code)
                .i64(*now)
                .done(),
            Command::WriteBegin {
                slot,
                serial,
                len,
                crc,
            } => Writer::new(op::WRITE_BEGIN)
                .u8(*slot)
                .str(serial)
                .u32(*len)
                .u32(*crc)
                .done(),
            Command::WriteChunk { slot, offset, data } => Writer::new(op::WRITE_CHUNK)
                .u8(*slot)
                .u32(*offset)
                .bytes(data)
                .done(),
            Command::WriteCommit { slot, now } => {
                Writer::new(op::WRITE_COMMIT).u8(*slot).i64(*now).done()
            }
            Command::ReadReceipt {
                slot,
                firm_code,
                now,
            } => Writer::new(op::READ_RECEIPT)
                .u8(*slot)
                .i64(*firm_code)
                .i64(*now)
                .done(),
            Command::Release {
                slot,
                serial,
                outcome,
            } => Writer::new(op::RELEASE)
                .u8(*slot)
                .str(serial)
                .u8(*outcome as u8)
                .done(),
        }
    }

    pub fn decode(p: &[u8]) -> Result<Command, StationError> {
        let mut r = Reader::new(p);
        let bad = |e: FieldError| StationError::new(ErrorCode::BadRequest, e.0);
        let opcode = r.u8().map_err(bad)?;
        let cmd = (|| {
            Ok(match opcode {
                op::HELLO => Command::Hello,
                op::STATUS => Command::Status,
                op::READ_INFO => Command::ReadInfo { slot: r.u8()? },
                op::TRUST => Command::Trust {
                    slot: r.u8()?,
                    template: r.bytes()?.to_vec(),
                },
                op::READ_REQUEST => Command::ReadRequest {
                    slot: r.u8()?,
                    firm_code: r.i64()?,
                    now: r.i64()?,
                },
                op::WRITE_BEGIN => Command::WriteBegin {
                    slot: r.u8()?,
                    serial: r.str()?,
                    len: r.u32()?,
                    crc: r.u32()?,
                },
                op::WRITE_CHUNK => Command::WriteChunk {
                    slot: r.u8()?,
                    offset: r.u32()?,
                    data: r.bytes()?.to_vec(),
                },
                op::WRITE_COMMIT => Command::WriteCommit {
                    slot: r.u8()?,
                    now: r.i64()?,
                },
                op::READ_RECEIPT => Command::ReadReceipt {
                    slot: r.u8()?,
                    firm_code: r.i64()?,
                    now: r.i64()?,
                },
                op::RELEASE => Command::Release {
                    slot: r.u8()?,
                    serial: r.str()?,
                    outcome: Outcome::from_byte(r.u8()?)?,
                },
                other => return Err(FieldError(format!("unknown command {other:#04x}"))),
            })
        })();
        match cmd {
            Err(e) if e.0.starts_with("unknown command") => {
                Err(StationError::new(ErrorCode::UnknownCommand, e.0))
            }
            Err(e) => Err(bad(e)),
            Ok(c) => {
                r.end().map_err(bad)?;
                Ok(c)
            }
        }
    }
}

/// What a station tells the bridge unasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Inserted {
        slot: u8,
        serial: String,
    },
    Removed {
        slot: u8,
        serial: String,
    },
    /// The station (re)started: whatever it held in memory (partial writes) is gone.
    Booted {
        boot_id: u32,
    },
}

impl Event {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Event::Inserted { slot, serial } => {
                Writer::new(op::INSERTED).u8(*slot).str(serial).done()
            }
            Event::Removed { slot, serial } => {
                Writer::new(op::REMOVED).u8(*slot).str(serial).done()
            }
            Event::Booted { boot_id } => Writer::new(op::BOOTED).u32(*boot_id).done(),
        }
    }

    pub fn decode(p: &[u8]) -> Result<Event, FieldError> {
        let mut r = Reader::new(p);
        let e = match r.u8()? {
            op::INSERTED => Event::Inserted {
                slot: r.u8()?,
                serial: r.str()?,
            },
            op::REMOVED => Event::Removed {
                slot: r.u8()?,
                serial: r.str()?,
            },
            op::BOOTED => Event::Booted { boot_id: r.u32()? },
            other => return Err(FieldError(format!("unknown event {other:#04x}"))),
        };
        r.end()?;
        Ok(e)
    }
}

/// The errors a station answers with (a response's status byte).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    UnknownCommand = 1,
    BadRequest = 2,
    /// No dongle in that slot.
    NoDongle = 3,
    /// The dongle was pulled out during the write; nothing of it was committed.
    Removed = 4,
    /// The dongle in the slot is not the one the write was begun for.
    WrongDongle = 5,
    /// The dongle refused the update (its own checks) or its memory failed.
    WriteFailed = 6,
    /// The dongle has no room for the update.
    DongleFull = 7,
    /// A chunk starts past what the station holds of the update.
    Gap = 8,
    /// The whole update does not match the CRC-32C given at `write_begin`.
    Checksum = 9,
    /// `write_chunk` or `write_commit` with no `write_begin` held (e.g. after a reboot).
    NotBegun = 10,
}

impl ErrorCode {
    pub fn from_byte(b: u8) -> Option<ErrorCode> {
        use ErrorCode::*;
        Some(match b {
            1 => UnknownCommand,
            2 => BadRequest,
            3 => NoDongle,
            4 => Removed,
            5 => WrongDongle,
            6 => WriteFailed,
            7 => DongleFull,
            8 => Gap,
            9 => Checksum,
            10 => NotBegun,
            _ => return None,
        })
    }

    pub fn word(self) -> &'static str {
        use ErrorCode::*;
        match self {
            UnknownCommand => "unknown_command",
            BadRequest => "bad_request",
            NoDongle => "no_dongle",
            Removed => "removed",
            WrongDongle => "wrong_dongle",
            WriteFailed => "write_failed",
            DongleFull => "dongle_full",
            Gap => "gap",
            Checksum => "checksum",
            NotBegun => "not_begun",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationError {
    pub code: ErrorCode,
    pub message: String,
}

impl StationError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> StationError {
        StationError {
            code,
            message: message.into(),
        }
    }
}

impl fmt::Display for StationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.code.word())
    }
}

/// A response payload: status 0 and the command's answer fields, or the error.
pub fn ok_response(body: Vec<u8>) -> Vec<u8> {
    let mut p = Vec::with_capacity(body.len() + 1);
    p.push(0);
    p.extend(body);
    p
}

pub fn error_response(e: &StationError) -> Vec<u8> {
    Writer::new(e.code as u8).str(&e.message).done()
}

/// The answer fields of a response, or the station's error.
pub fn read_response(p: &[u8]) -> Result<Result<Vec<u8>, StationError>, FieldError> {
    let mut r = Reader::new(p);
    match r.u8()? {
        0 => Ok(Ok(p[1..].to_vec())),
        code => {
            let code = ErrorCode::from_byte(code)
                .ok_or_else(|| FieldError(format!("unknown error code {code}")))?;
            Ok(Err(StationError::new(code, r.str()?)))
        }
    }
}

/// `hello`'s answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StationInfo {
    pub protocol: u8,
    pub station_id: String,
    pub firmware: String,
    pub slots: u8,
    pub capabilities: u32,
    pub max_chunk: u16,
    pub boot_id: u32,
}

impl StationInfo {
    pub fn encode(&self) -> Vec<u8> {
        Writer::default()
            .u8(self.protocol)
            .str(&self.station_id)
            .str(&self.firmware)
            .u8(self.slots)
            .u32(self.capabilities)
            .u16(self.max_chunk)
            .u32(self.boot_id)
            .done()
    }
    pub fn decode(p: &[u8]) -> Result<StationInfo, FieldError> {
        let mut r = Reader::new(p);
        let s = StationInfo {
            protocol: r.u8()?,
            station_id: r.str()?,
            firmware: r.str()?,
            slots: r.u8()?,
            capabilities: r.u32()?,
            max_chunk: r.u16()?,
            boot_id: r.u32()?,
        };
        r.end()?;
        Ok(s)
    }
}

/// `status`'s answer: the serial in each slot (empty: no dongle).
pub fn encode_status(slots: &[String]) -> Vec<u8> {
    let mut w = Writer::default().u8(slots.len() as u8);
    for s in slots {
        w = w.str(s);
    }
    w.done()
}

pub fn decode_status(p: &[u8]) -> Result<Vec<String>, FieldError> {
    let mut r = Reader::new(p);
    let n = r.u8()?;
    let out = (0..n).map(|_| r.str()).collect::<Result<Vec<_>, _>>()?;
    r.end()?;
    Ok(out)
}

/// `read_info`'s answer: what a dongle is, before anything is asked of the server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DongleInfo {
    pub serial: String,
    /// The key id of the dongle's signing key (its public key's fingerprint).
    pub key_id: String,
    /// Firm code → firm update counter, for every firm the dongle holds anything of.
    pub firms: Vec<(i64, u64)>,
    /// Bytes of update the dongle can still take.
    pub free_bytes: u32,
}

impl DongleInfo {
    pub fn counter(&self, firm_code: i64) -> u64 {
        self.firms
            .iter()
            .find(|(f, _)| *f == firm_code)
            .map_or(0, |(_, c)| *c)
    }
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default()
            .str(&self.serial)
            .str(&self.key_id)
            .u8(self.firms.len() as u8);
        for (f, c) in &self.firms {
            w = w.i64(*f).u64(*c);
        }
        w.u32(self.free_bytes).done()
    }
    pub fn decode(p: &[u8]) -> Result<DongleInfo, FieldError> {
        let mut r = Reader::new(p);
        let serial = r.str()?;
        let key_id = r.str()?;
        let n = r.u8()?;
        let firms = (0..n)
            .map(|_| Ok((r.i64()?, r.u64()?)))
            .collect::<Result<Vec<_>, FieldError>>()?;
        let free_bytes = r.u32()?;
        r.end()?;
        Ok(DongleInfo {
            serial,
            key_id,
            firms,
            free_bytes,
        })
    }
}

/// `write_commit`'s answer: what the dongle applied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    pub firm_code: i64,
    pub update_id: i64,
    pub counter: u64,
}

impl Committed {
    pub fn encode(&self) -> Vec<u8> {
        Writer::default()
            .i64(self.firm_code)
            .i64(self.update_id)
            .u64(self.counter)
            .done()
    }
    pub fn decode(p: &[u8]) -> Result<Committed, FieldError> {
        let mut r = Reader::new(p);
        let c = Committed {
            firm_code: r.i64()?,
            update_id: r.i64()?,
            counter: r.u64()?,
        };
        r.end()?;
        Ok(c)
    }
}

/// A 32-bit offset answer (`write_begin`, `write_chunk`: how many bytes the station holds).
pub fn decode_u32(p: &[u8]) -> Result<u32, FieldError> {
    let mut r = Reader::new(p);
    let v = r.u32()?;
    r.end()?;
    Ok(v)
}

/// A text answer (`read_request`, `read_receipt`: an armoured message).
pub fn decode_text(p: &[u8]) -> Result<String, FieldError> {
    let mut r = Reader::new(p);
    let v = r.str()?;
    r.end()?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_and_event_reads_back_as_written() {
        let cmds = vec![
            Command::Hello,
            Command::Status,
            Command::ReadInfo { slot: 2 },
            Command::Trust {
                slot: 1,
                template: b"{}".to_vec(),
            },
            Command::ReadRequest {
                slot: 0,
                firm_code: 6_000_010,
                now: 1_800_000_000,
            },
            Command::WriteBegin {
                slot: 3,
                serial: "3-1000001".into(),
                len: 4_000,
                crc: 0xdead_beef,
            },
            Command::WriteChunk {
                slot: 3,
                offset: 1_024,
                data: vec![0, 1, 2],
            },
            Command::WriteCommit { slot: 3, now: 5 },
            Command::ReadReceipt {
                slot: 3,
                firm_code: 6,
                now: 7,
            },
            Command::Release {
                slot: 3,
                serial: "3-1".into(),
                outcome: Outcome::Refused,
            },
        ];
        for c in cmds {
            assert_eq!(Command::decode(&c.encode()), Ok(c));
        }
        for e in [
            Event::Inserted {
                slot: 1,
                serial: "3-1".into(),
            },
            Event::Removed {
                slot: 1,
                serial: "3-1".into(),
            },
            Event::Booted { boot_id: 77 },
        ] {
            assert_eq!(Event::decode(&e.encode()), Ok(e));
        }
        let err = Command::decode(&[0x7f]).unwrap_err();
        assert_eq!(err.code, ErrorCode::UnknownCommand);
        let err = Command::decode(&[0x10]).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
        let err = Command::decode(&[0x10, 1, 2]).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest, "trailing bytes");
    }

    #[test]
    fn responses_carry_answers_or_errors() {
        let info = DongleInfo {
            serial: "3-1".into(),
            key_id: "k".into(),
            firms: vec![(6_000_010, 1)],
            free_bytes: 65_536,
        };
        let p = ok_response(info.encode());
        let body = read_response(&p).unwrap().unwrap();
        assert_eq!(DongleInfo::decode(&body).unwrap(), info);
        let e = StationError::new(ErrorCode::Removed, "the dongle was pulled out");
        assert_eq!(read_response(&error_response(&e)).unwrap(), Err(e));
    }
}
