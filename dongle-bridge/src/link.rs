//! The link layer (PROTOCOL.md, "Sequence numbers, acknowledgements, retries"): the bridge
//! sends a command and waits for the response with the same sequence number, sending the
//! very same frame again when none comes in time, a bounded number of times; the station
//! answers a command it has already executed (the same sequence number again) with its
//! kept response instead of executing it twice. Events go the other way, each sent until
//! its acknowledgement arrives and delivered once.
use std::collections::VecDeque;
use std::io;
use std::time::{Duration, Instant};

use crate::frame::{Deframer, Frame, Kind};
use crate::proto::{self, Command, Event, StationError};

/// A serial line, or anything that carries bytes both ways.
pub trait Line: Send {
    /// What arrived within `timeout`; 0 bytes when nothing did.
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;
    fn send(&mut self, bytes: &[u8]) -> io::Result<()>;
}

impl Line for Box<dyn serialport::SerialPort> {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        self.set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(io::Error::from)?;
        match io::Read::read(self, buf) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the serial port was closed",
            )),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(e) => Err(e),
        }
    }
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        io::Write::write_all(self, bytes)?;
        io::Write::flush(self)
    }
}

/// How long to wait for a response, and how often to send a command again.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub timeout: Duration,
    pub retries: u32,
}

impl Timing {
    /// The response time-out at a line speed: a station's own time plus a longest frame
    /// each way (10 bits a byte: 8N1).
    pub fn for_baud(baud: u32, station_ms: u64, retries: u32) -> Timing {
        let frame_ms =
            (crate::frame::MAX_WIRE as u64 * 10 * 1_000).div_ceil(u64::from(baud.max(1)));
        Timing {
            timeout: Duration::from_millis(station_ms + 2 * frame_ms),
            retries,
        }
    }
}

/// Why a call failed at the link: the station is gone or not answering.
#[derive(Debug)]
pub enum LinkError {
    Io(io::Error),
    /// No response after every retry.
    NoAnswer {
        command: &'static str,
        attempts: u32,
    },
    /// A response that does not read as one (a station of another version).
    Garbled(String),
}

impl std::fmt::Display for LinkError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LinkError::Io(e) => write!(f, "serial line: {e}"),
            LinkError::NoAnswer { command, attempts } => {
                write!(f, "no answer to {command} after {attempts} attempts")
            }
            LinkError::Garbled(m) => write!(f, "garbled answer: {m}"),
        }
    }
}

/// The outcome of one command: the answer's fields, the station's refusal, or no link.
#[derive(Debug)]
pub enum CallError {
    Station(StationError),
    Link(LinkError),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Station(e) => write!(f, "station: {e}"),
            CallError::Link(e) => e.fmt(f),
        }
    }
}

impl From<LinkError> for CallError {
    fn from(e: LinkError) -> Self {
        CallError::Link(e)
    }
}

/// What the link saw, for the console and the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinkStats {
    pub commands: u64,
    pub resent: u64,
    /// Frames dropped for a bad CRC or a damaged encoding.
    pub dropped: u64,
    pub bytes_out: u64,
    pub bytes_in: u64,
    /// Time spent waiting for responses.
    pub waiting: Duration,
}

enum Got {
    Response(Frame),
    Events,
    Nothing,
}

/// The bridge's end of a station's line.
pub struct HostLink<L: Line> {
    line: L,
    deframer: Deframer,
    next_seq: u16,
    last_event: Option<u16>,
    events: VecDeque<Event>,
    pub timing: Timing,
    pub stats: LinkStats,
}

impl<L: Line> HostLink<L> {
    pub fn new(line: L, timing: Timing) -> HostLink<L> {
        // Start where a previous run of the bridge is unlikely to have stopped, so that a
        // station does not take a new command for the repeat of an old one.
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        HostLink {
            line,
            deframer: Deframer::default(),
            next_seq: (seed % 60_000) as u16 + 1,
            last_event: None,
            events: VecDeque::new(),
            timing,
            stats: LinkStats::default(),
        }
    }

    /// Sends `cmd` and waits for its response: the answer's fields or the station's error.
    pub fn call(&mut self, cmd: &Command) -> Result<Vec<u8>, CallError> {
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1).max(1);
        let wire = Frame::new(Kind::Command, seq, cmd.encode()).encode();
        self.stats.commands += 1;
        let started = Instant::now();
        let attempts = self.timing.retries + 1;
        for attempt in 0..attempts {
            if attempt > 0 {
                self.stats.resent += 1;
            }
            self.line.send(&wire).map_err(LinkError::Io)?;
            self.stats.bytes_out += wire.len() as u64;
            let deadline = Instant::now() + self.timing.timeout;
            loop {
                let f = match self.next_frame(deadline)? {
                    Got::Nothing => break,
                    Got::Events => continue,
                    Got::Response(f) => f,
                };
                if f.seq == seq {
                    self.stats.waiting += started.elapsed();
                    return match proto::read_response(&f.payload) {
                        Ok(Ok(body)) => Ok(body),
                        Ok(Err(e)) => Err(CallError::Station(e)),
                        Err(e) => Err(LinkError::Garbled(e.0).into()),
                    };
                }
                // A late response to an earlier command: already answered, dropped.
            }
        }
        self.stats.waiting += started.elapsed();
        Err(LinkError::NoAnswer {
            command: cmd.name(),
            attempts,
        }
        .into())
    }

    /// The next event the station sent, waiting up to `wait`.
    pub fn next_event(&mut self, wait: Duration) -> Result<Option<Event>, LinkError> {
        if let Some(e) = self.events.pop_front() {
            return Ok(Some(e));
        }
        let deadline = Instant::now() + wait;
        while self.events.is_empty() {
            if let Got::Nothing = self.next_frame(deadline)? {
                break;
            }
        }
        Ok(self.events.pop_front())
    }

    /// Events already received, without waiting.
    pub fn pending_events(&mut self) -> Vec<Event> {
        self.events.drain(..).collect()
    }

    /// Reads until a response or an event arrives, or `deadline`. Events are acknowledged
    /// and kept (once each, however often the station sent them).
    fn next_frame(&mut self, deadline: Instant) -> Result<Got, LinkError> {
        let mut buf = [0u8; 2048];
        let mut frames = vec![];
        loop {
            let now = Instant::now();
            if now >= deadline {
                return Ok(Got::Nothing);
            }
            let n = self
                .line
                .read_some(&mut buf, deadline - now)
                .map_err(LinkError::Io)?;
            self.stats.bytes_in += n as u64;
            self.deframer.push(&buf[..n], &mut frames);
            let mut found = None;
            let events = self.events.len();
            for f in frames.drain(..) {
                match f {
                    Err(_) => self.stats.dropped += 1,
                    Ok(f) if f.kind == Kind::Event => self.event(f)?,
                    Ok(f) if f.kind == Kind::Response && found.is_none() => found = Some(f),
                    // Responses after the first in one read are stale repeats; a bridge
                    // never receives commands or acks.
                    Ok(_) => {}
                }
            }
            if let Some(f) = found {
                return Ok(Got::Response(f));
            }
            if self.events.len() > events {
                return Ok(Got::Events);
            }
        }
    }

    fn event(&mut self, f: Frame) -> Result<(), LinkError> {
        let ack = Frame::new(Kind::Ack, f.seq, vec![]).encode();
        self.line.send(&ack).map_err(LinkError::Io)?;
        self.stats.bytes_out += ack.len() as u64;
        if self.last_event == Some(f.seq) {
            return Ok(()); // our ack was lost: the station sent it again
        }
        match Event::decode(&f.payload) {
            Ok(e) => {
                self.last_event = Some(f.seq);
                self.events.push_back(e);
            }
            Err(_) => self.stats.dropped += 1,
        }
        Ok(())
    }
}

/// Hooks for a simulated line's faults (the station simulator's `--bad-crc`).
pub trait Noise: Send {
    /// Whether to damage this outgoing frame.
    fn damage_out(&mut self) -> bool;
    /// Whether to treat this incoming good frame as damaged (noise on the way in).
    fn damage_in(&mut self) -> bool;
}

/// No noise.
pub struct Clean;
impl Noise for Clean {
    fn damage_out(&mut self) -> bool {
        false
    }
    fn damage_in(&mut self) -> bool {
        false
    }
}

/// A station's end of the line.
pub struct StationLink<L: Line> {
    line: L,
    deframer: Deframer,
    /// The last command executed and its response's wire bytes.
    last: Option<(u16, Vec<u8>)>,
    outbox: VecDeque<(u16, Vec<u8>)>,
    next_event: u16,
    event_sent: Option<Instant>,
    event_tries: u32,
    pub timing: Timing,
    pub noise: Box<dyn Noise>,
    /// Commands answered from the kept response (repeats), frames dropped.
    pub repeats: u64,
    pub dropped: u64,
}

impl<L: Line> StationLink<L> {
    pub fn new(line: L, timing: Timing, boot_id: u32) -> StationLink<L> {
        StationLink {
            line,
            deframer: Deframer::default(),
            last: None,
            outbox: VecDeque::new(),
            next_event: (boot_id % 60_000) as u16 + 1,
            event_sent: None,
            event_tries: 0,
            timing,
            noise: Box::new(Clean),
            repeats: 0,
            dropped: 0,
        }
    }

    fn send(&mut self, mut wire: Vec<u8>) -> io::Result<()> {
        if self.noise.damage_out() && wire.len() > 3 {
            let i = wire.len() / 2;
            wire[i] ^= 0x5a;
            if wire[i] == 0 {
                wire[i] = 0x01;
            }
        }
        self.line.send(&wire)
    }

    /// A restart: the kept response and unsent events are gone, event numbers start anew.
    pub fn reboot(&mut self, boot_id: u32) {
        self.last = None;
        self.outbox.clear();
        self.next_event = (boot_id % 60_000) as u16 + 1;
        self.event_sent = None;
        self.event_tries = 0;
        self.deframer.reset();
    }

    /// Sends an event (kept and sent again until acknowledged).
    pub fn emit(&mut self, e: &Event) -> io::Result<()> {
        let seq = self.next_event;
        self.next_event = self.next_event.wrapping_add(1).max(1);
        self.outbox
            .push_back((seq, Frame::new(Kind::Event, seq, e.encode()).encode()));
        self.pump_events()
    }

    /// Events not yet acknowledged.
    #[cfg(test)]
    pub fn unacknowledged(&self) -> usize {
        self.outbox.len()
    }

    fn pump_events(&mut self) -> io::Result<()> {
        let due = match self.event_sent {
            None => true,
            Some(t) => t.elapsed() >= self.timing.timeout,
        };
        if let (true, Some((_, wire))) = (due, self.outbox.front().cloned()) {
            if self.event_tries > self.timing.retries {
                // Nobody listens: keep it for whoever connects next, sent from time to time.
                if self
                    .event_sent
                    .is_some_and(|t| t.elapsed() < 10 * self.timing.timeout)
                {
                    return Ok(());
                }
            }
            self.event_tries += 1;
            self.event_sent = Some(Instant::now());
            self.send(wire)?;
        }
        Ok(())
    }

    /// Waits up to `wait` for the next command to execute. A repeated command is answered
    /// here from the kept response; acks are taken; events are sent again when due.
    pub fn poll(
        &mut self,
        wait: Duration,
    ) -> io::Result<Option<(u16, Result<Command, StationError>)>> {
        let mut buf = [0u8; 2048];
        let mut frames = vec![];
        let deadline = Instant::now() + wait;
        loop {
            self.pump_events()?;
            let now = Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let slice = (deadline - now).min(Duration::from_millis(20));
            let n = self.line.read_some(&mut buf, slice)?;
            self.deframer.push(&buf[..n], &mut frames);
            let mut found = None;
            for f in frames.drain(..) {
                let f = match f {
                    Ok(f) if !self.noise.damage_in() => f,
                    _ => {
                        self.dropped += 1;
                        continue;
                    }
                };
                match f.kind {
                    Kind::Ack if self.outbox.front().is_some_and(|(s, _)| *s == f.seq) => {
                        self.outbox.pop_front();
                        self.event_sent = None;
                        self.event_tries = 0;
                    }
                    Kind::Command if found.is_none() => {
                        if let Some((seq, wire)) = &self.last {
                            if *seq == f.seq {
                                self.repeats += 1;
                                let wire = wire.clone();
                                self.send(wire)?;
                                continue;
                            }
                        }
                        found = Some((f.seq, Command::decode(&f.payload)));
                    }
                    // A second new command in one read: the bridge sends one at a time, so
                    // it is a repeat it will send again if it still wants it.
                    _ => {}
                }
            }
            if found.is_some() {
                return Ok(found);
            }
        }
    }

    /// Answers command `seq` (and keeps the answer for a repeat).
    pub fn respond(&mut self, seq: u16, payload: Vec<u8>) -> io::Result<()> {
        let wire = Frame::new(Kind::Response, seq, payload).encode();
        self.last = Some((seq, wire.clone()));
        self.send(wire)
    }
}

/// Two ends of an in-memory line, with a filter each way that may damage or drop bytes
/// (for tests).
#[cfg(test)]
pub mod memory {
    use super::*;
    use std::sync::mpsc::{channel, Receiver, RecvTimeoutError, Sender};

    pub type Filter = Box<dyn FnMut(Vec<u8>) -> Option<Vec<u8>> + Send>;

    pub struct MemLine {
        tx: Sender<Vec<u8>>,
        rx: Receiver<Vec<u8>>,
        filter: Filter,
        pending: Vec<u8>,
    }

    pub fn pair(a_to_b: Filter, b_to_a: Filter) -> (MemLine, MemLine) {
        let (ta, rb) = channel();
        let (tb, ra) = channel();
        (
            MemLine {
                tx: ta,
                rx: ra,
                filter: a_to_b,
                pending: vec![],
            },
            MemLine {
                tx: tb,
                rx: rb,
                filter: b_to_a,
                pending: vec![],
            },
        )
    }

    pub fn clean() -> Filter {
        Box::new(Some)
    }

    impl Line for MemLine {
        fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
            if self.pending.is_empty() {
                match self.rx.recv_timeout(timeout) {
                    Ok(b) => self.pending = b,
                    Err(RecvTimeoutError::Timeout) => return Ok(0),
                    Err(RecvTimeoutError::Disconnected) => {
                        return Err(io::Error::new(io::ErrorKind::BrokenPipe, "closed"))
                    }
                }
            }
            let n = self.pending.len().min(buf.len());
            buf[..n].copy_from_slice(&self.pending[..n]);
            self.pending.drain(..n);
            Ok(n)
        }
        fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
            if let Some(b) = (self.filter)(bytes.to_vec()) {
                let _ = self.tx.send(b);
            }
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::memory::{clean, pair, Filter, MemLine};
    use super::*;
    use crate::proto::{ok_response, ErrorCode};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn timing() -> Timing {
        Timing {
            timeout: Duration::from_millis(60),
            retries: 3,
        }
    }

    /// Damages the frames whose index (from 0) is in `which`.
    fn damage(which: &'static [usize]) -> Filter {
        let mut n = 0;
        Box::new(move |mut b: Vec<u8>| {
            if which.contains(&n) {
                let i = b.len() / 2;
                b[i] ^= 0x40;
                if b[i] == 0 {
                    b[i] = 1;
                }
            }
            n += 1;
            Some(b)
        })
    }

    /// Drops the frames whose index is in `which`.
    fn lose(which: &'static [usize]) -> Filter {
        let mut n = 0;
        Box::new(move |b: Vec<u8>| {
            n += 1;
            (!which.contains(&(n - 1))).then_some(b)
        })
    }

    /// A station that counts every command it executes and answers its slot number.
    fn station(
        line: MemLine,
        executed: Arc<AtomicUsize>,
        rounds: usize,
    ) -> std::thread::JoinHandle<u64> {
        std::thread::spawn(move || {
            let mut s = StationLink::new(line, timing(), 1);
            let mut served = 0;
            while served < rounds {
                if let Some((seq, cmd)) = s.poll(Duration::from_millis(500)).unwrap() {
                    executed.fetch_add(1, Ordering::SeqCst);
                    let slot = match cmd.unwrap() {
                        Command::ReadInfo { slot } => slot,
                        _ => 0,
                    };
                    s.respond(seq, ok_response(vec![slot])).unwrap();
                    served += 1;
                } else {
                    break;
                }
            }
            // Keep answering repeats for a while.
            let _ = s.poll(Duration::from_millis(300));
            s.repeats
        })
    }

    #[test]
    fn a_damaged_command_is_dropped_and_sent_again_never_acted_on() {
        let (host, st) = pair(damage(&[0]), clean());
        let executed = Arc::new(AtomicUsize::new(0));
        let t = station(st, executed.clone(), 2);
        let mut h = HostLink::new(host, timing());
        assert_eq!(h.call(&Command::ReadInfo { slot: 4 }).unwrap(), vec![4]);
        assert_eq!(h.stats.resent, 1, "the damaged one was sent again");
        assert_eq!(h.call(&Command::ReadInfo { slot: 5 }).unwrap(), vec![5]);
        t.join().unwrap();
        assert_eq!(
            executed.load(Ordering::SeqCst),
            2,
            "each command executed once"
        );
    }

    #[test]
    fn a_damaged_or_lost_response_brings_the_kept_answer_not_a_second_execution() {
        // Response 0 damaged, response 1 lost.
        let (host, st) = pair(clean(), damage(&[0]));
        let executed = Arc::new(AtomicUsize::new(0));
        let t = station(st, executed.clone(), 1);
        let mut h = HostLink::new(host, timing());
        assert_eq!(h.call(&Command::ReadInfo { slot: 1 }).unwrap(), vec![1]);
        assert_eq!(h.stats.dropped, 1);
        let repeats = t.join().unwrap();
        assert_eq!(executed.load(Ordering::SeqCst), 1);
        assert_eq!(repeats, 1);

        let (host, st) = pair(clean(), lose(&[0, 1]));
        let executed = Arc::new(AtomicUsize::new(0));
        let t = station(st, executed.clone(), 1);
        let mut h = HostLink::new(host, timing());
        assert_eq!(h.call(&Command::ReadInfo { slot: 2 }).unwrap(), vec![2]);
        assert_eq!(h.stats.resent, 2);
        assert_eq!(t.join().unwrap(), 2);
        assert_eq!(executed.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn retries_are_bounded() {
        // Nothing comes back at all.
        let (host, _st) = pair(clean(), clean());
        let mut h = HostLink::new(host, timing());
        let started = Instant::now();
        match h.call(&Command::Hello) {
            Err(CallError::Link(LinkError::NoAnswer { attempts, .. })) => assert_eq!(attempts, 4),
            other => panic!("{other:?}"),
        }
        assert_eq!(h.stats.resent, 3);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(240) && took < Duration::from_secs(2),
            "{took:?}"
        );
    }

    #[test]
    fn station_errors_arrive_as_station_errors() {
        let (host, st) = pair(clean(), clean());
        let t = std::thread::spawn(move || {
            let mut s = StationLink::new(st, timing(), 1);
            let (seq, _) = s.poll(Duration::from_secs(2)).unwrap().unwrap();
            let e = StationError::new(ErrorCode::NoDongle, "slot 3 is empty");
            s.respond(seq, proto::error_response(&e)).unwrap();
        });
        let mut h = HostLink::new(host, timing());
        match h.call(&Command::ReadInfo { slot: 3 }) {
            Err(CallError::Station(e)) => assert_eq!(e.code, ErrorCode::NoDongle),
            other => panic!("{other:?}"),
        }
        t.join().unwrap();
    }

    #[test]
    fn an_event_arrives_once_though_its_ack_was_lost() {
        // The host's first ack is lost: the station sends the event again.
        let (host, st) = pair(lose(&[0]), clean());
        let t = std::thread::spawn(move || {
            let mut s = StationLink::new(st, timing(), 9);
            s.emit(&Event::Inserted {
                slot: 0,
                serial: "3-1".into(),
            })
            .unwrap();
            let until = Instant::now() + Duration::from_secs(2);
            while s.unacknowledged() > 0 && Instant::now() < until {
                s.poll(Duration::from_millis(20)).unwrap();
            }
            let left = s.unacknowledged();
            // Stay on the line while the bridge listens for a second delivery.
            let _ = s.poll(Duration::from_millis(600));
            left
        });
        let mut h = HostLink::new(host, timing());
        let first = h.next_event(Duration::from_secs(1)).unwrap();
        assert_eq!(
            first,
            Some(Event::Inserted {
                slot: 0,
                serial: "3-1".into()
            })
        );
        // The repeat is acknowledged, not delivered again.
        assert_eq!(h.next_event(Duration::from_millis(400)).unwrap(), None);
        assert_eq!(t.join().unwrap(), 0, "acknowledged in the end");
    }
}
