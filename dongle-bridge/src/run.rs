//! `dongle-bridge run`: one thread per station port, an uploader for receipts and failure
//! reports, and the console. Every step of a dongle goes into the journal before the next
//! is taken (PROTOCOL.md, "What the bridge does with a dongle").
//!
//! Over 800 lines on purpose: most of it is `StationRun`, one station's cycle for a dongle
//! (hello, insert, template, request, update, chunked write, commit, receipt, release), a
//! single state machine whose steps and journal entries are meant to be read in order; the
//! uploader and `run` beside it share its `Shared` state and nothing else.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::console::{Console, StationView, Totals};
use crate::frame::crc32c;
use crate::journal::{Journal, Step};
use crate::link::{CallError, HostLink, LinkError, Timing};
use crate::proto::{self, Command, DongleInfo, ErrorCode, Event, Outcome, StationInfo};
use crate::server::{Server, ServerError};

/// Where a station is: a port path, or a USB vendor and product id to look for.
#[derive(Debug, Clone)]
pub enum Port {
    Path(String),
    Usb { vid: u16, pid: u16, index: usize },
}

impl Port {
    pub fn parse(s: &str) -> Result<Port, String> {
        if let Some(ids) = s.strip_prefix("usb:") {
            let (ids, index) = match ids.split_once('#') {
                Some((i, n)) => (i, n.parse().map_err(|_| format!("bad index in {s}"))?),
                None => (ids, 0),
            };
            let (v, p) = ids
                .split_once(':')
                .ok_or_else(|| format!("{s}: write usb:VID:PID (hex), e.g. usb:0403:6001"))?;
            let hex = |x: &str| {
                u16::from_str_radix(x, 16).map_err(|_| format!("{s}: {x} is not a hex id"))
            };
            Ok(Port::Usb {
                vid: hex(v)?,
                pid: hex(p)?,
                index,
            })
        } else {
            Ok(Port::Path(s.to_string()))
        }
    }

    /// The device path now (a USB station may come back under another name).
    fn resolve(&self) -> Result<String, String> {
        match self {
            Port::Path(p) => Ok(p.clone()),
            Port::Usb { vid, pid, index } => {
                let mut found: Vec<String> = serialport::available_ports()
                    .map_err(|e| e.to_string())?
                    .into_iter()
                    .filter(|p| {
                        matches!(&p.port_type, serialport::SerialPortType::UsbPort(u)
                            if u.vid == *vid && u.pid == *pid)
                    })
                    .map(|p| p.port_name)
                    .collect();
                found.sort();
                found.get(*index).cloned().ok_or_else(|| {
                    format!("no USB serial port {vid:04x}:{pid:04x} (#{index}) is plugged in")
                })
            }
        }
    }

    fn describe(&self) -> String {
        match self {
            Port::Path(p) => p.clone(),
            Port::Usb { vid, pid, index } => format!("usb:{vid:04x}:{pid:04x}#{index}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct StationSpec {
    pub name: String,
    pub port: Port,
}

impl StationSpec {
    /// `NAME=PORT` or `PORT` (then named st-1, st-2 … by position).
    pub fn parse(s: &str, n: usize) -> Result<StationSpec, String> {
        let (name, port) = match s.split_once('=') {
            Some((name, port)) => (name.to_string(), port),
            None => (format!("st-{n}"), s),
        };
        Ok(StationSpec {
            name,
            port: Port::parse(port)?,
        })
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    pub server: String,
    pub user: String,
    pub password: String,
    pub order: i64,
    pub stations: Vec<StationSpec>,
    pub baud: u32,
    pub journal: std::path::PathBuf,
    pub json: bool,
    pub until_complete: bool,
    pub idle_exit: Option<Duration>,
    pub retries: u32,
    /// Stop once this many dongles are done and uploaded (the benchmark).
    pub stop_after: Option<u64>,
}

/// What a run did, for the benchmark.
#[derive(Debug, Clone, Default)]
pub struct Summary {
    /// Time in `program` round trips, and in uploads (receipts, failures).
    pub server: Duration,
    pub uploads: Duration,
    /// Time the stations' threads spent waiting for the serial line (responses).
    pub line_wait: Duration,
    /// Bytes of update written (on average per dongle).
    pub update_bytes: u64,
}

/// What the station threads share.
pub struct Shared {
    pub opts: RunOptions,
    pub server: Server,
    pub journal: Mutex<Journal>,
    pub console: Console,
    pub stop: AtomicBool,
    pub firm_code: i64,
    pub template: Vec<u8>,
    /// When a station last had something to do.
    pub last_work: Mutex<Instant>,
    /// Time spent in server round trips (program), microseconds; for the benchmark.
    pub server_us: std::sync::atomic::AtomicU64,
    /// Time spent uploading, microseconds.
    pub upload_us: std::sync::atomic::AtomicU64,
    /// Time the links waited for responses, microseconds.
    pub line_us: std::sync::atomic::AtomicU64,
    /// Dongles done (programmed, refused, failed) by this run.
    pub done: std::sync::atomic::AtomicU64,
}

impl Shared {
    fn journal(&self, station: &str, serial: &str, step: Step) -> Result<(), Abort> {
        self.journal
            .lock()
            .expect("journal")
            .append(self.opts.order, station, serial, step)
            .map_err(|e| Abort::Fatal(format!("cannot write the journal: {e}")))
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }

    fn worked(&self) {
        *self.last_work.lock().expect("clock") = Instant::now();
    }
}

/// Why a station's work stopped short.
#[derive(Debug)]
pub enum Abort {
    /// The line is gone: reopen the port.
    Link(LinkError),
    Stop,
    Fatal(String),
}

impl From<LinkError> for Abort {
    fn from(e: LinkError) -> Self {
        Abort::Link(e)
    }
}

/// The order's firm and license template: from the server, kept beside the journal for a
/// start while the server is down.
pub fn order_facts(server: &Server, opts: &RunOptions) -> Result<(i64, Vec<u8>), String> {
    let cache = opts
        .journal
        .with_file_name(format!("order-{}.template.json", opts.order));
    match server
        .order(opts.order)
        .and_then(|o| Ok((o.firm_code, server.template(o.firm_code)?)))
    {
        Ok((firm, t)) => {
            let text =
                serde_json::to_vec(&json!({"firm_code": firm, "template": t})).expect("template");
            let tmp = cache.with_extension("tmp");
            std::fs::write(&tmp, &text)
                .and_then(|_| std::fs::rename(&tmp, &cache))
                .map_err(|e| format!("{}: {e}", cache.display()))?;
            Ok((firm, serde_json::to_vec(&t).expect("template")))
        }
        Err(ServerError::Refused { message, .. }) => {
            Err(format!("production order {}: {message}", opts.order))
        }
        Err(e @ ServerError::Unavailable(_)) => {
            let text = std::fs::read(&cache).map_err(|_| {
                format!("{e}; and no copy of the order's license template from an earlier run")
            })?;
            let v: serde_json::Value =
                serde_json::from_slice(&text).map_err(|e| format!("{}: {e}", cache.display()))?;
            Ok((
                v["firm_code"].as_i64().unwrap_or_default(),
                serde_json::to_vec(&v["template"]).expect("template"),
            ))
        }
    }
}

type Link = HostLink<Box<dyn serialport::SerialPort>>;

fn open(spec: &StationSpec, baud: u32) -> Result<Box<dyn serialport::SerialPort>, String> {
    let path = spec.port.resolve()?;
    let port = serialport::new(&path, baud)
        .timeout(Duration::from_millis(50))
        .open()
        .map_err(|e| format!("{path}: {e}"))?;
    let _ = port.clear(serialport::ClearBuffer::All);
    Ok(port)
}

struct StationRun<'a> {
    sh: &'a Shared,
    spec: StationSpec,
    view: StationView,
    /// The boot id `hello` answered: a `booted` event with it is the station's start
    /// announcement arriving late, not a reboot.
    boot_id: Option<u32>,
}

fn call(link: &mut Link, cmd: &Command) -> Result<Result<Vec<u8>, proto::StationError>, Abort> {
    match link.call(cmd) {
        Ok(b) => Ok(Ok(b)),
        Err(CallError::Station(e)) => Ok(Err(e)),
        Err(CallError::Link(e)) => Err(Abort::Link(e)),
    }
}

fn garbled(e: crate::frame::FieldError) -> Abort {
    Abort::Link(LinkError::Garbled(e.0))
}

fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

/// How a dongle ended at the station.
enum Done {
    Programmed,
    /// Programmed by an earlier run or an earlier visit (its receipt is kept): released again.
    Again,
    Refused,
    Failed,
    /// It left the slot before anything could be decided.
    Gone,
}

impl<'a> StationRun<'a> {
    fn show(&mut self, activity: &str) {
        self.view.activity = activity.to_string();
        self.sh.console.station(self.view.clone());
    }

    /// Runs the station until the bridge stops: (re)connects, then serves its dongles.
    fn run(mut self) {
        let timing = Timing::for_baud(self.sh.opts.baud, 250, self.sh.opts.retries);
        let mut wait = Duration::from_millis(200);
        while !self.sh.stopping() {
            self.show("connecting");
            let port = match open(&self.spec, self.sh.opts.baud) {
                Ok(p) => p,
                Err(e) => {
                    self.show(&format!("port missing: {e}"));
                    std::thread::sleep(wait);
                    wait = (wait * 2).min(Duration::from_secs(2));
                    continue;
                }
            };
            wait = Duration::from_millis(200);
            let mut link: Link = HostLink::new(port, timing);
            let served = self.serve(&mut link);
            self.sh
                .line_us
                .fetch_add(link.stats.waiting.as_micros() as u64, Ordering::Relaxed);
            match served {
                Err(Abort::Stop) | Ok(()) => break,
                Err(Abort::Fatal(e)) => {
                    self.sh
                        .console
                        .log("fatal", &self.spec.name, "", &e, json!({}));
                    self.sh.stop.store(true, Ordering::Relaxed);
                    break;
                }
                Err(Abort::Link(e)) => {
                    self.sh.console.log(
                        "station_lost",
                        &self.spec.name,
                        "",
                        &format!("station lost ({e}); reconnecting"),
                        json!({}),
                    );
                    self.view.serial = None;
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
        }
        self.show("stopped");
    }

    fn hello(&mut self, link: &mut Link) -> Result<StationInfo, Abort> {
        let info = match call(link, &Command::Hello)? {
            Ok(b) => StationInfo::decode(&b).map_err(garbled)?,
            Err(e) => return Err(Abort::Link(LinkError::Garbled(e.to_string()))),
        };
        self.boot_id = Some(info.boot_id);
        if info.protocol != crate::frame::VERSION {
            return Err(Abort::Fatal(format!(
                "station {} speaks protocol version {}; this bridge speaks {}",
                self.spec.name,
                info.protocol,
                crate::frame::VERSION
            )));
        }
        Ok(info)
    }

    fn serve(&mut self, link: &mut Link) -> Result<(), Abort> {
        let info = self.hello(link)?;
        self.sh.console.log(
            "station_connected",
            &self.spec.name,
            "",
            &format!(
                "station {} ({}, {} slots) on {}",
                info.station_id,
                info.firmware,
                info.slots,
                self.spec.port.describe()
            ),
            json!({"station_id": info.station_id, "firmware": info.firmware, "slots": info.slots}),
        );
        let mut queue: std::collections::VecDeque<(u8, String)> = Default::default();
        let rescan = |link: &mut Link,
                      queue: &mut std::collections::VecDeque<(u8, String)>|
         -> Result<(), Abort> {
            let slots = match call(link, &Command::Status)? {
                Ok(b) => proto::decode_status(&b).map_err(garbled)?,
                Err(e) => return Err(Abort::Link(LinkError::Garbled(e.to_string()))),
            };
            queue.clear();
            for (i, s) in slots.into_iter().enumerate() {
                if !s.is_empty() {
                    queue.push_back((i as u8, s));
                }
            }
            Ok(())
        };
        rescan(link, &mut queue)?;
        // Events that came with the status are handled as any (an insertion the status
        // did not show yet; a stale one is checked against the slot before anything).
        loop {
            if self.sh.stopping() {
                return Err(Abort::Stop);
            }
            while let Some((slot, serial)) = queue.pop_front() {
                if self.sh.stopping() {
                    return Err(Abort::Stop);
                }
                self.sh.worked();
                self.view.serial = Some(serial.clone());
                let done = self.dongle(link, slot, &serial)?;
                self.view.serial = None;
                self.view.done_bytes = 0;
                self.view.total_bytes = 0;
                let outcome = match done {
                    Done::Programmed | Done::Again => Some(Outcome::Programmed),
                    Done::Refused => Some(Outcome::Refused),
                    Done::Failed => Some(Outcome::Failed),
                    Done::Gone => None,
                };
                if let Some(o) = outcome {
                    // The operator's light; a dongle already gone answers no_dongle.
                    let release = Command::Release {
                        slot,
                        serial: serial.clone(),
                        outcome: o,
                    };
                    let _ = call(link, &release)?;
                }
                if !matches!(done, Done::Again | Done::Gone) {
                    self.sh.done.fetch_add(1, Ordering::Relaxed);
                }
                self.sh.worked();
                // What happened meanwhile (removals, insertions, a reboot).
                for e in link.pending_events() {
                    self.event(link, e, &mut queue)?;
                }
            }
            self.show("idle");
            if let Some(e) = link.next_event(Duration::from_millis(200))? {
                self.event(link, e, &mut queue)?;
            }
        }
    }

    fn event(
        &mut self,
        link: &mut Link,
        e: Event,
        queue: &mut std::collections::VecDeque<(u8, String)>,
    ) -> Result<(), Abort> {
        match e {
            Event::Inserted { slot, serial } => {
                if !queue.iter().any(|(s, x)| *s == slot && *x == serial) {
                    queue.push_back((slot, serial));
                }
            }
            Event::Removed { slot, serial } => queue.retain(|(s, x)| !(*s == slot && *x == serial)),
            Event::Booted { boot_id } if self.boot_id == Some(boot_id) => {}
            Event::Booted { .. } => {
                self.sh.console.log(
                    "station_rebooted",
                    &self.spec.name,
                    "",
                    "station rebooted",
                    json!({}),
                );
                self.hello(link)?;
                let slots = match call(link, &Command::Status)? {
                    Ok(b) => proto::decode_status(&b).map_err(garbled)?,
                    Err(e) => return Err(Abort::Link(LinkError::Garbled(e.to_string()))),
                };
                queue.clear();
                for (i, s) in slots.into_iter().enumerate() {
                    if !s.is_empty() {
                        queue.push_back((i as u8, s));
                    }
                }
            }
        }
        Ok(())
    }

    fn log_dongle(&self, kind: &str, serial: &str, text: &str, fields: serde_json::Value) {
        self.sh
            .console
            .log(kind, &self.spec.name, serial, text, fields);
    }

    /// Everything for the dongle in `slot`, from wherever the journal says it stands.
    fn dongle(&mut self, link: &mut Link, slot: u8, serial: &str) -> Result<Done, Abort> {
        let (order, firm) = (self.sh.opts.order, self.sh.firm_code);
        let station = self.spec.name.clone();
        let state = self
            .sh
            .journal
            .lock()
            .expect("journal")
            .dongle(order, serial);
        self.show("reading dongle");
        let info = match call(link, &Command::ReadInfo { slot })? {
            Ok(b) => Some(DongleInfo::decode(&b).map_err(garbled)?),
            Err(e) if e.code == ErrorCode::NoDongle => None,
            Err(e) => return self.fail(serial, false, &format!("reading the dongle: {e}")),
        };
        let Some(info) = info.filter(|i| i.serial == serial) else {
            // Gone (another dongle's own event comes). An update it got and surely never
            // had committed frees its slot; one whose commit was sent keeps the slot until
            // the dongle comes back and shows its counter.
            if state.update.is_some() && !state.commit_sent && state.receipt.is_none() {
                self.fail(serial, false, "removed before the update was written")?;
            }
            return Ok(Done::Gone);
        };
        if state.receipt.is_some() {
            // Programmed before (its receipt is uploaded or queued): never again.
            return Ok(Done::Again);
        }
        let counter = info.counter(firm) as i64;
        // An update from before (a restart): applied already, or to be written again.
        let mut update = match state.update {
            Some(Step::Update {
                counter_from,
                counter_to,
                update,
                update_id,
                expires_at,
                ..
            }) => {
                if counter == counter_to && (state.commit_sent || state.written) {
                    return self.receipt(link, slot, serial, update_id, false);
                }
                let fresh = chrono::DateTime::parse_from_rfc3339(&expires_at)
                    .ok()
                    .or_else(|| {
                        chrono::NaiveDateTime::parse_from_str(&expires_at, "%Y-%m-%dT%H:%M:%S%.f")
                            .ok()
                            .map(|n| n.and_utc().fixed_offset())
                    })
                    .is_some_and(|t| t.timestamp() > now() + 60);
                (counter == counter_from && fresh).then_some((update_id, update))
            }
            _ => None,
        };
        if update.is_none() {
            if !info.firms.iter().any(|(f, _)| *f == firm) {
                self.show("trusting firm");
                if let Err(e) = call(
                    link,
                    &Command::Trust {
                        slot,
                        template: self.sh.template.clone(),
                    },
                )? {
                    if e.code == ErrorCode::NoDongle {
                        return Ok(Done::Gone);
                    }
                    return self.fail(serial, false, &format!("trust: {e}"));
                }
            }
            let request = match call(
                link,
                &Command::ReadRequest {
                    slot,
                    firm_code: firm,
                    now: now(),
                },
            )? {
                Ok(b) => proto::decode_text(&b).map_err(garbled)?,
                Err(e) if e.code == ErrorCode::NoDongle => return Ok(Done::Gone),
                Err(e) => return self.fail(serial, false, &format!("reading its request: {e}")),
            };
            let mut wait = Duration::from_millis(250);
            let p = loop {
                if self.sh.stopping() {
                    return Err(Abort::Stop);
                }
                self.show("asking the server");
                let t = Instant::now();
                let r = self.sh.server.program(order, &station, &request);
                self.sh
                    .server_us
                    .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                match r {
                    Ok(p) => break p,
                    Err(ServerError::Unavailable(m)) => {
                        self.show(&format!(
                            "server unavailable, retrying: {}",
                            m.chars().take(40).collect::<String>()
                        ));
                        std::thread::sleep(wait);
                        wait = (wait * 2).min(Duration::from_secs(2));
                    }
                    Err(ServerError::Refused {
                        status,
                        code,
                        message,
                        lock,
                    }) => {
                        return self.refused(link, slot, serial, status, &code, &message, lock);
                    }
                }
            };
            self.sh.journal(
                &station,
                serial,
                Step::Update {
                    slot: p.slot,
                    update_id: p.update_id,
                    counter_from: p.counter_from,
                    counter_to: p.counter_to,
                    expires_at: p.expires_at.clone(),
                    update: p.update.clone(),
                },
            )?;
            update = Some((p.update_id, p.update));
        }
        let (update_id, update) = update.expect("an update");
        match self.write(link, slot, serial, update_id, update.as_bytes(), false)? {
            Ok(()) => self.receipt(link, slot, serial, update_id, false),
            Err(done) => Ok(done),
        }
    }

    /// Writes an update in chunks and commits it: Ok(Ok) when the dongle applied it.
    fn write(
        &mut self,
        link: &mut Link,
        slot: u8,
        serial: &str,
        update_id: i64,
        bytes: &[u8],
        lock: bool,
    ) -> Result<Result<(), Done>, Abort> {
        let station = self.spec.name.clone();
        let (len, crc) = (bytes.len() as u32, crc32c(bytes));
        self.view.total_bytes = len as u64;
        let mut begun_again = 0;
        'begin: loop {
            self.show("writing");
            let begin = Command::WriteBegin {
                slot,
                serial: serial.into(),
                len,
                crc,
            };
            let mut have = match call(link, &begin)? {
                Ok(b) => proto::decode_u32(&b).map_err(garbled)?,
                Err(e) => return self.write_failed(serial, &e, lock).map(Err),
            };
            while have < len {
                self.view.done_bytes = have as u64;
                self.sh.console.station(self.view.clone());
                let end = (have as usize + proto::MAX_CHUNK as usize).min(bytes.len());
                let chunk = Command::WriteChunk {
                    slot,
                    offset: have,
                    data: bytes[have as usize..end].to_vec(),
                };
                have = match call(link, &chunk)? {
                    Ok(b) => proto::decode_u32(&b).map_err(garbled)?,
                    Err(e) if e.code == ErrorCode::NotBegun && begun_again < 3 => {
                        begun_again += 1; // the station rebooted: begin again
                        continue 'begin;
                    }
                    Err(e) => return self.write_failed(serial, &e, lock).map(Err),
                };
            }
            self.view.done_bytes = len as u64;
            if !lock {
                self.sh
                    .journal(&station, serial, Step::Commit { update_id })?;
            }
            self.show("committing");
            return match call(link, &Command::WriteCommit { slot, now: now() })? {
                Ok(b) => {
                    let c = proto::Committed::decode(&b).map_err(garbled)?;
                    if !lock {
                        self.sh.journal(
                            &station,
                            serial,
                            Step::Written {
                                update_id,
                                counter: c.counter,
                            },
                        )?;
                    }
                    Ok(Ok(()))
                }
                Err(e) if e.code == ErrorCode::NotBegun && begun_again < 3 => {
                    begun_again += 1;
                    continue 'begin;
                }
                Err(e) => self.write_failed(serial, &e, lock).map(Err),
            };
        }
    }

    /// A write the station refused: whether the update can be in the dongle decides what the
    /// server is told.
    fn write_failed(
        &mut self,
        serial: &str,
        e: &proto::StationError,
        lock: bool,
    ) -> Result<Done, Abort> {
        let reason = format!("{} ({})", e.message, e.code.word());
        if lock {
            self.log_dongle(
                "dongle_refused",
                serial,
                &format!("the lock could not be written: {reason}"),
                json!({}),
            );
            return Ok(Done::Refused);
        }
        // Every station error is given before the dongle applies anything (all or nothing).
        self.fail(serial, false, &reason)?;
        if matches!(
            e.code,
            ErrorCode::Removed | ErrorCode::NoDongle | ErrorCode::WrongDongle
        ) {
            // Not in the slot any more: nothing to release (the operator may already have
            // put it back, and that insertion is its own).
            return Ok(Done::Gone);
        }
        Ok(Done::Failed)
    }

    fn fail(&mut self, serial: &str, written: bool, reason: &str) -> Result<Done, Abort> {
        let station = self.spec.name.clone();
        let reason: String = reason.chars().take(200).collect();
        let had_update = self
            .sh
            .journal
            .lock()
            .expect("journal")
            .dongle(self.sh.opts.order, serial)
            .update
            .is_some();
        if had_update {
            // The server gave it a slot: tell it (the uploader does).
            self.sh.journal(
                &station,
                serial,
                Step::Failed {
                    written,
                    reason: reason.clone(),
                },
            )?;
        }
        self.view.failed += 1;
        self.log_dongle(
            "dongle_failed",
            serial,
            &format!("failed: {reason}"),
            json!({"reason": reason, "written": written}),
        );
        Ok(Done::Failed)
    }

    #[allow(clippy::too_many_arguments)]
    fn refused(
        &mut self,
        link: &mut Link,
        slot: u8,
        serial: &str,
        status: u16,
        code: &str,
        message: &str,
        lock: Option<String>,
    ) -> Result<Done, Abort> {
        let station = self.spec.name.clone();
        self.sh.journal(
            &station,
            serial,
            Step::Refused {
                code: code.into(),
                message: message.into(),
            },
        )?;
        self.view.refused += 1;
        self.log_dongle(
            "dongle_refused",
            serial,
            &format!("refused: {message}"),
            json!({"code": code, "status": status, "reason": message}),
        );
        if let Some(lock) = lock {
            // A blacklisted dongle: the lock goes in, and its receipt to the server.
            if let Ok(Ok(())) = self.write(link, slot, serial, 0, lock.as_bytes(), true) {
                let _ = self.receipt(link, slot, serial, 0, true)?;
                self.log_dongle("dongle_locked", serial, "locked", json!({}));
            }
        }
        Ok(Done::Refused)
    }

    /// Reads the receipt back and queues it for the uploader.
    fn receipt(
        &mut self,
        link: &mut Link,
        slot: u8,
        serial: &str,
        update_id: i64,
        lock: bool,
    ) -> Result<Done, Abort> {
        let station = self.spec.name.clone();
        self.show("reading receipt");
        let firm = self.sh.firm_code;
        let receipt = match call(
            link,
            &Command::ReadReceipt {
                slot,
                firm_code: firm,
                now: now(),
            },
        )? {
            Ok(b) => proto::decode_text(&b).map_err(garbled)?,
            Err(e) => {
                // Written but its receipt not read: the slot stays assigned; the dongle's
                // next contact (or this bridge, when it comes back) proves it.
                if !lock {
                    self.sh.journal(
                        &station,
                        serial,
                        Step::Failed {
                            written: true,
                            reason: format!("the receipt could not be read: {}", e.message),
                        },
                    )?;
                }
                self.view.failed += 1;
                self.log_dongle(
                    "dongle_failed",
                    serial,
                    &format!("written, receipt not read: {e}"),
                    json!({"written": true}),
                );
                return Ok(Done::Failed);
            }
        };
        self.sh
            .journal(&station, serial, Step::Receipt { receipt, lock })?;
        if !lock {
            self.view.programmed += 1;
            self.log_dongle(
                "dongle_programmed",
                serial,
                &format!("programmed (update {update_id})"),
                json!({"update_id": update_id}),
            );
        }
        Ok(Done::Programmed)
    }
}

/// Sends what the server has not heard yet (receipts, failures), oldest first, until the
/// bridge stops; waits and tries again while the server is away.
fn uploader(sh: &Shared) {
    let mut wait = Duration::from_millis(100);
    loop {
        let pending: Vec<_> = {
            let j = sh.journal.lock().expect("journal");
            j.pending(sh.opts.order).into_iter().cloned().collect()
        };
        if pending.is_empty() {
            if sh.stopping() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        let mut progressed = false;
        for e in pending {
            let t = Instant::now();
            let r = match &e.step {
                Step::Receipt {
                    receipt,
                    lock: false,
                } => sh
                    .server
                    .receipt(sh.opts.order, &e.station, receipt)
                    .map(|programmed| Step::Uploaded { programmed }),
                Step::Receipt {
                    receipt,
                    lock: true,
                } => sh
                    .server
                    .lock_receipt(receipt)
                    .map(|_| Step::Uploaded { programmed: false }),
                Step::Failed { written, reason } => sh
                    .server
                    .failed(sh.opts.order, &e.station, &e.serial, *written, reason)
                    .map(|_| Step::FailureReported),
                _ => continue,
            };
            sh.upload_us
                .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
            let next = match r {
                Ok(step) => step,
                Err(ServerError::Refused { code, message, .. }) => {
                    sh.console.log(
                        "upload_refused",
                        &e.station,
                        &e.serial,
                        &format!("the server refused it: {message}"),
                        json!({"code": code}),
                    );
                    match e.step {
                        Step::Failed { .. } => Step::FailureReported,
                        _ => Step::UploadRefused { code, message },
                    }
                }
                Err(ServerError::Unavailable(_)) => break,
            };
            if sh.journal(&e.station, &e.serial, next).is_err() {
                sh.stop.store(true, Ordering::Relaxed);
                return;
            }
            progressed = true;
        }
        if progressed {
            wait = Duration::from_millis(100);
        } else {
            if sh.stopping() {
                return; // stopped while the server is away: the journal keeps them for next time
            }
            std::thread::sleep(wait);
            wait = (wait * 2).min(Duration::from_secs(2));
        }
    }
}

/// Runs the bridge until the order is complete (`until_complete`), nothing happened for
/// `idle_exit`, or it is stopped.
pub fn run(opts: RunOptions) -> Result<Summary, String> {
    let journal = Journal::open(&opts.journal).map_err(|e| e.to_string())?;
    let server = Server::new(&opts.server, &opts.user, &opts.password);
    let (firm_code, template) = order_facts(&server, &opts)?;
    let console = Console::new(opts.json);
    let pending = journal.pending(opts.order).len();
    let sh = Arc::new(Shared {
        opts: opts.clone(),
        server,
        journal: Mutex::new(journal),
        console,
        stop: AtomicBool::new(false),
        firm_code,
        template,
        last_work: Mutex::new(Instant::now()),
        server_us: Default::default(),
        upload_us: Default::default(),
        line_us: Default::default(),
        done: Default::default(),
    });
    sh.console.log(
        "bridge_started",
        "",
        "",
        &format!(
            "production order {} (firm code {firm_code}), {} station(s), journal {} ({pending} to upload)",
            opts.order,
            opts.stations.len(),
            opts.journal.display()
        ),
        json!({"production_order_id": opts.order, "firm_code": firm_code, "pending_uploads": pending}),
    );
    install_signals(&sh);
    let mut threads = vec![];
    for spec in &opts.stations {
        let sh = sh.clone();
        let spec = spec.clone();
        threads.push(std::thread::spawn(move || {
            let view = StationView {
                name: spec.name.clone(),
                port: spec.port.describe(),
                ..Default::default()
            };
            StationRun {
                sh: &sh,
                spec,
                view,
                boot_id: None,
            }
            .run();
        }));
    }
    let up = {
        let sh = sh.clone();
        std::thread::spawn(move || uploader(&sh))
    };
    let mut last_poll = Instant::now() - Duration::from_secs(10);
    let mut totals = Totals::default();
    let result = loop {
        std::thread::sleep(Duration::from_millis(100));
        if SIGNALLED.load(Ordering::Relaxed) {
            sh.stop.store(true, Ordering::Relaxed);
        }
        if sh.stopping() {
            break Ok(());
        }
        if last_poll.elapsed() >= Duration::from_millis(700) {
            last_poll = Instant::now();
            match sh.server.order(opts.order) {
                Ok(o) => {
                    totals.dongles = o.dongles;
                    totals.programmed = o.programmed;
                    totals.remaining = o.remaining;
                    totals.failed = o.failed;
                    totals.complete = o.complete;
                    totals.server = "up".into();
                }
                Err(e) => {
                    totals.server = format!(
                        "down ({})",
                        e.to_string().chars().take(30).collect::<String>()
                    )
                }
            }
            totals.pending_uploads = sh
                .journal
                .lock()
                .expect("journal")
                .pending(opts.order)
                .len();
            sh.console.totals(totals.clone());
        }
        sh.console.tick();
        let quiet = totals.pending_uploads == 0 && totals.server == "up";
        if opts.until_complete && totals.complete && quiet {
            break Ok(());
        }
        if let Some(n) = opts.stop_after {
            if sh.done.load(Ordering::Relaxed) >= n
                && sh
                    .journal
                    .lock()
                    .expect("journal")
                    .pending(opts.order)
                    .is_empty()
            {
                break Ok(());
            }
        }
        if let Some(idle) = opts.idle_exit {
            if quiet && sh.last_work.lock().expect("clock").elapsed() >= idle {
                break Ok(());
            }
        }
    };
    sh.stop.store(true, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let _ = up.join();
    let t = {
        let j = sh.journal.lock().expect("journal");
        j.pending(opts.order).len()
    };
    sh.console.tick();
    sh.console.log(
        "bridge_stopped",
        "",
        "",
        &format!(
            "stopped: order {} programmed {} of {}, {t} to upload",
            opts.order, totals.programmed, totals.dongles
        ),
        json!({"programmed": totals.programmed, "dongles": totals.dongles, "complete": totals.complete, "pending_uploads": t}),
    );
    let updates: Vec<u64> = sh
        .journal
        .lock()
        .expect("journal")
        .entries
        .iter()
        .filter_map(|e| match &e.step {
            Step::Update { update, .. } => Some(update.len() as u64),
            _ => None,
        })
        .collect();
    result.map(|()| Summary {
        server: Duration::from_micros(sh.server_us.load(Ordering::Relaxed)),
        uploads: Duration::from_micros(sh.upload_us.load(Ordering::Relaxed)),
        line_wait: Duration::from_micros(sh.line_us.load(Ordering::Relaxed)),
        update_bytes: updates.iter().sum::<u64>() / (updates.len() as u64).max(1),
    })
}

static SIGNALLED: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    SIGNALLED.store(true, Ordering::Relaxed);
}

/// SIGINT and SIGTERM stop the bridge after the step under way (the journal holds the rest).
fn install_signals(_sh: &Shared) {
    unsafe {
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
    }
}
