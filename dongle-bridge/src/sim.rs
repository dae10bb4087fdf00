//! The station simulator: a programming station on a pty, with emulated dongles (the client
//! runtime's dongle containers, kept in a folder) and faults to inject: line noise (bad
//! CRC), a dongle unplugged mid-write, a slow station, a dongle refusing the write, a
//! station that reboots.
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use licentia::client::Container;
use licentia::domain::ContainerType;

use crate::frame::crc32c;
use crate::link::{Line, Noise, StationLink, Timing};
use crate::proto::{
    caps, encode_status, error_response, ok_response, Command, Committed, DongleInfo, ErrorCode,
    Event, Outcome, StationError, StationInfo, MAX_CHUNK,
};

/// What the simulator is asked to be.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub station_id: String,
    pub slots: u8,
    /// Where the dongles live: one folder per serial with its `container.json`.
    pub dongle_dir: PathBuf,
    /// Fresh dongles to make (after those already in `dongle_dir`).
    pub dongles: usize,
    pub first_serial: String,
    /// Emulate the line's byte time at this speed (None: as fast as the pty goes).
    pub baud: Option<u32>,
    /// Damage one frame in N, each way.
    pub bad_crc: Option<u32>,
    /// Pull every Nth dongle out in the middle of its write (it comes back later).
    pub unplug_every: Option<u32>,
    /// Every Nth dongle refuses the write (it goes to the reject bin).
    pub refuse_every: Option<u32>,
    /// Extra time before every response.
    pub slow: Duration,
    /// Reboot after every N commands.
    pub reboot_every: Option<u32>,
    /// How long the operator takes to put the next dongle in after one is released.
    pub swap: Duration,
    /// Bytes of update a dongle holds at most.
    pub capacity: u32,
}

/// Time the station spent, for the benchmark.
#[derive(Debug, Default)]
pub struct SimStats {
    /// In the dongles' cryptography (request, apply, receipt), microseconds.
    pub crypto_us: AtomicU64,
    /// Emulating the line's byte time, microseconds.
    pub line_us: AtomicU64,
    pub programmed: AtomicU64,
}

struct Dongle {
    container: Container,
    dir: PathBuf,
    /// The fault this dongle carries, used once.
    unplug: bool,
    refuse: bool,
    /// The last update committed: its length, CRC and what it did (a repeated commit
    /// answers the same).
    last_commit: Option<(u32, u32, Committed)>,
}

impl Dongle {
    fn save(&self) -> Result<(), StationError> {
        self.container.save(&self.dir).map_err(|e| {
            StationError::new(
                ErrorCode::WriteFailed,
                format!("dongle memory: {}", e.message),
            )
        })
    }
}

struct WriteBuf {
    serial: String,
    len: u32,
    crc: u32,
    data: Vec<u8>,
}

#[derive(Default)]
struct Slot {
    dongle: Option<Dongle>,
    buf: Option<WriteBuf>,
    /// When the operator puts the next dongle in.
    refill_at: Option<Instant>,
}

pub struct Station {
    opts: SimOptions,
    slots: Vec<Slot>,
    pool: VecDeque<Dongle>,
    inserted: u32,
    boot_id: u32,
    commands: u32,
    pub stats: Arc<SimStats>,
}

/// The next serial after `serial` (`3-5000001` → `3-5000002`).
fn next_serial(serial: &str) -> String {
    let (prefix, n) = serial.rsplit_once('-').unwrap_or(("", serial));
    let width = n.len();
    let n: u64 = n.parse().unwrap_or(0) + 1;
    if prefix.is_empty() {
        format!("{n:0width$}")
    } else {
        format!("{prefix}-{n:0width$}")
    }
}

fn random_u32() -> u32 {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    u32::from_le_bytes(b)
}

impl Station {
    /// The station with its pool of dongles: those in `dongle_dir` first (by name), then
    /// `dongles` fresh ones.
    pub fn new(opts: SimOptions) -> io::Result<Station> {
        std::fs::create_dir_all(&opts.dongle_dir)?;
        let mut names: Vec<String> = std::fs::read_dir(&opts.dongle_dir)?
            .filter_map(|e| e.ok())
            .filter(|e| Container::exists(&e.path()))
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut pool = VecDeque::new();
        for n in &names {
            let dir = opts.dongle_dir.join(n);
            let container = Container::load(&dir)
                .map_err(|e| io::Error::other(format!("{}: {}", dir.display(), e.message)))?;
            pool.push_back(Dongle {
                container,
                dir,
                unplug: false,
                refuse: false,
                last_commit: None,
            });
        }
        let mut serial = opts.first_serial.clone();
        let mut made = 0;
        while made < opts.dongles {
            if !names.contains(&serial) {
                let container =
                    Container::create(ContainerType::Dongle, Some(serial.clone()), &[], 0)
                        .map_err(|e| io::Error::other(e.message))?;
                let dir = opts.dongle_dir.join(&serial);
                container
                    .save(&dir)
                    .map_err(|e| io::Error::other(e.message))?;
                pool.push_back(Dongle {
                    container,
                    dir,
                    unplug: false,
                    refuse: false,
                    last_commit: None,
                });
                made += 1;
            }
            serial = next_serial(&serial);
        }
        let slots = (0..opts.slots).map(|_| Slot::default()).collect();
        Ok(Station {
            opts,
            slots,
            pool,
            inserted: 0,
            boot_id: random_u32(),
            commands: 0,
            stats: Arc::default(),
        })
    }

    fn slot(&mut self, slot: u8) -> Result<&mut Slot, StationError> {
        let n = self.slots.len();
        self.slots.get_mut(slot as usize).ok_or_else(|| {
            StationError::new(
                ErrorCode::BadRequest,
                format!("slot {slot} does not exist (this station has {n})"),
            )
        })
    }

    fn dongle(&mut self, slot: u8) -> Result<&mut Dongle, StationError> {
        self.slot(slot)?
            .dongle
            .as_mut()
            .ok_or_else(|| StationError::new(ErrorCode::NoDongle, format!("slot {slot} is empty")))
    }

    fn info(&self) -> StationInfo {
        StationInfo {
            protocol: crate::frame::VERSION,
            station_id: self.opts.station_id.clone(),
            firmware: concat!("licentia-sim ", env!("CARGO_PKG_VERSION")).into(),
            slots: self.opts.slots,
            capabilities: caps::RESUME | caps::RELEASE_LED,
            max_chunk: MAX_CHUNK,
            boot_id: self.boot_id,
        }
    }

    /// Executes one command: its response payload and the events it caused.
    pub fn execute(&mut self, cmd: Command, events: &mut Vec<Event>) -> Vec<u8> {
        self.commands += 1;
        match self.run(cmd, events) {
            Ok(body) => ok_response(body),
            Err(e) => error_response(&e),
        }
    }

    fn run(&mut self, cmd: Command, events: &mut Vec<Event>) -> Result<Vec<u8>, StationError> {
        match cmd {
            Command::Hello => Ok(self.info().encode()),
            Command::Status => Ok(encode_status(
                &self
                    .slots
                    .iter()
                    .map(|s| {
                        s.dongle
                            .as_ref()
                            .map(|d| d.container.serial.clone())
                            .unwrap_or_default()
                    })
                    .collect::<Vec<_>>(),
            )),
            Command::ReadInfo { slot } => {
                let capacity = self.opts.capacity;
                let d = self.dongle(slot)?;
                let used = serde_json::to_vec(&d.container).map_or(0, |v| v.len()) as u32;
                Ok(DongleInfo {
                    serial: d.container.serial.clone(),
                    key_id: d.container.key_id(),
                    firms: d
                        .container
                        .firms
                        .iter()
                        .map(|(f, s)| (*f, s.counter))
                        .collect(),
                    free_bytes: capacity.saturating_sub(used),
                }
                .encode())
            }
            Command::Trust { slot, template } => {
                let t: licentia::protocol::Template =
                    serde_json::from_slice(&template).map_err(|e| {
                        StationError::new(
                            ErrorCode::BadRequest,
                            format!("the template is not a license template: {e}"),
                        )
                    })?;
                let d = self.dongle(slot)?;
                d.container.trust(t.firm_code, &t.firm_name, &t.keys);
                d.save()?;
                Ok(vec![])
            }
            Command::ReadRequest {
                slot,
                firm_code,
                now,
            } => {
                let t = Instant::now();
                let d = self.dongle(slot)?;
                let r = d.container.request(firm_code, now);
                self.stats
                    .crypto_us
                    .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                let r = r.map_err(|e| StationError::new(ErrorCode::WriteFailed, e.message))?;
                Ok(crate::frame::Writer::default().str(&r).done())
            }
            Command::WriteBegin {
                slot,
                serial,
                len,
                crc,
            } => {
                let free = {
                    let capacity = self.opts.capacity;
                    let d = self.dongle(slot)?;
                    if d.container.serial != serial {
                        return Err(StationError::new(
                            ErrorCode::WrongDongle,
                            format!(
                                "slot {slot} holds dongle {}, not {serial}",
                                d.container.serial
                            ),
                        ));
                    }
                    let used = serde_json::to_vec(&d.container).map_or(0, |v| v.len()) as u32;
                    capacity.saturating_sub(used)
                };
                if len > free {
                    return Err(StationError::new(
                        ErrorCode::DongleFull,
                        format!("an update of {len} bytes does not fit in {free} free bytes"),
                    ));
                }
                let s = self.slot(slot)?;
                match &s.buf {
                    Some(b) if b.serial == serial && b.len == len && b.crc == crc => {
                        Ok((b.data.len() as u32).to_le_bytes().to_vec())
                    }
                    _ => {
                        s.buf = Some(WriteBuf {
                            serial,
                            len,
                            crc,
                            data: Vec::with_capacity(len as usize),
                        });
                        Ok(0u32.to_le_bytes().to_vec())
                    }
                }
            }
            Command::WriteChunk { slot, offset, data } => {
                self.dongle(slot)?;
                if self.slots[slot as usize]
                    .dongle
                    .as_ref()
                    .is_some_and(|d| d.unplug)
                    && offset > 0
                {
                    // The operator pulls it out mid-write; it comes back later.
                    let s = &mut self.slots[slot as usize];
                    let mut d = s.dongle.take().expect("present");
                    s.buf = None;
                    d.unplug = false;
                    events.push(Event::Removed {
                        slot,
                        serial: d.container.serial.clone(),
                    });
                    self.pool.push_back(d);
                    s.refill_at = Some(Instant::now() + self.opts.swap);
                    return Err(StationError::new(
                        ErrorCode::Removed,
                        format!("the dongle in slot {slot} was pulled out during the write"),
                    ));
                }
                let s = self.slot(slot)?;
                let b = s.buf.as_mut().ok_or_else(|| {
                    StationError::new(ErrorCode::NotBegun, "no write is begun in this slot")
                })?;
                let have = b.data.len() as u32;
                if offset > have {
                    return Err(StationError::new(
                        ErrorCode::Gap,
                        format!("a chunk at {offset} but only {have} bytes are held"),
                    ));
                }
                let end = offset as usize + data.len();
                if end > b.len as usize || data.len() > MAX_CHUNK as usize {
                    return Err(StationError::new(
                        ErrorCode::BadRequest,
                        format!("a chunk ending at {end} past the update's {} bytes", b.len),
                    ));
                }
                if end > b.data.len() {
                    b.data.resize(end, 0);
                }
                b.data[offset as usize..end].copy_from_slice(&data);
                Ok((b.data.len() as u32).to_le_bytes().to_vec())
            }
            Command::WriteCommit { slot, now } => self.commit(slot, now),
            Command::ReadReceipt {
                slot,
                firm_code,
                now,
            } => {
                let t = Instant::now();
                let d = self.dongle(slot)?;
                let r = d.container.receipt(firm_code, now);
                self.stats
                    .crypto_us
                    .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
                let r = r.map_err(|e| StationError::new(ErrorCode::WriteFailed, e.message))?;
                Ok(crate::frame::Writer::default().str(&r).done())
            }
            Command::Release {
                slot,
                serial,
                outcome,
            } => {
                let swap = self.opts.swap;
                let s = self.slot(slot)?;
                if let Some(d) = s.dongle.as_ref().filter(|d| d.container.serial != serial) {
                    return Err(StationError::new(
                        ErrorCode::WrongDongle,
                        format!(
                            "slot {slot} holds dongle {}, not {serial}",
                            d.container.serial
                        ),
                    ));
                }
                if let Some(d) = s.dongle.take() {
                    s.buf = None;
                    s.refill_at = Some(Instant::now() + swap);
                    events.push(Event::Removed {
                        slot,
                        serial: d.container.serial.clone(),
                    });
                    if outcome == Outcome::Programmed {
                        self.stats.programmed.fetch_add(1, Ordering::Relaxed);
                    }
                }
                Ok(vec![])
            }
        }
    }

    fn commit(&mut self, slot: u8, now: i64) -> Result<Vec<u8>, StationError> {
        let stats = self.stats.clone();
        let s = self.slot(slot)?;
        let d = s.dongle.as_mut().ok_or_else(|| {
            StationError::new(ErrorCode::NoDongle, format!("slot {slot} is empty"))
        })?;
        let Some(b) = s.buf.as_ref() else {
            return match &d.last_commit {
                // Committed already; the buffer is gone with it.
                Some((_, _, c)) => Ok(c.encode()),
                None => Err(StationError::new(
                    ErrorCode::NotBegun,
                    "no write is begun in this slot",
                )),
            };
        };
        if b.serial != d.container.serial {
            return Err(StationError::new(
                ErrorCode::WrongDongle,
                format!("the write was begun for dongle {}", b.serial),
            ));
        }
        if b.data.len() as u32 != b.len {
            return Err(StationError::new(
                ErrorCode::BadRequest,
                format!("only {} of {} bytes are held", b.data.len(), b.len),
            ));
        }
        if crc32c(&b.data) != b.crc {
            return Err(StationError::new(
                ErrorCode::Checksum,
                "the update does not match its CRC-32C",
            ));
        }
        let (len, crc) = (b.len, b.crc);
        if let Some((l, c, done)) = &d.last_commit {
            if (*l, *c) == (len, crc) {
                s.buf = None;
                return Ok(done.encode());
            }
        }
        if d.refuse {
            d.refuse = false;
            s.buf = None;
            return Err(StationError::new(
                ErrorCode::WriteFailed,
                "the dongle refused the write (memory error)",
            ));
        }
        let text = String::from_utf8(b.data.clone()).map_err(|_| {
            StationError::new(
                ErrorCode::WriteFailed,
                "the update is not an armoured message",
            )
        })?;
        let t = Instant::now();
        let applied = d.container.apply(&text, now);
        stats
            .crypto_us
            .fetch_add(t.elapsed().as_micros() as u64, Ordering::Relaxed);
        let applied = applied.map_err(|e| {
            StationError::new(
                ErrorCode::WriteFailed,
                format!("the dongle refused the update: {} ({})", e.message, e.code),
            )
        })?;
        d.save()?;
        let done = Committed {
            firm_code: applied.firm_code,
            update_id: applied.update_id,
            counter: applied.counter,
        };
        d.last_commit = Some((len, crc, done.clone()));
        s.buf = None;
        Ok(done.encode())
    }

    /// The operator's part: a released slot gets the next dongle of the pool.
    fn operate(&mut self, events: &mut Vec<Event>) {
        let now = Instant::now();
        for (i, s) in self.slots.iter_mut().enumerate() {
            if s.dongle.is_some() || s.refill_at.is_some_and(|t| t > now) {
                continue;
            }
            if let Some(mut d) = self.pool.pop_front() {
                self.inserted += 1;
                let n = self.inserted;
                if self.opts.unplug_every.is_some_and(|k| n % k == 0) && d.last_commit.is_none() {
                    d.unplug = true;
                }
                if self.opts.refuse_every.is_some_and(|k| n % k == 0) {
                    d.refuse = true;
                }
                events.push(Event::Inserted {
                    slot: i as u8,
                    serial: d.container.serial.clone(),
                });
                s.dongle = Some(d);
                s.buf = None;
                s.refill_at = None;
            }
        }
    }

    /// A reboot: buffers gone, a new boot id; the dongles stay in their slots.
    fn reboot(&mut self, events: &mut Vec<Event>) {
        self.boot_id = random_u32();
        for s in &mut self.slots {
            s.buf = None;
        }
        events.push(Event::Booted {
            boot_id: self.boot_id,
        });
        for (i, s) in self.slots.iter().enumerate() {
            if let Some(d) = &s.dongle {
                events.push(Event::Inserted {
                    slot: i as u8,
                    serial: d.container.serial.clone(),
                });
            }
        }
    }

    /// Dongles still waiting in the pool or in a slot.
    pub fn waiting(&self) -> usize {
        self.pool.len() + self.slots.iter().filter(|s| s.dongle.is_some()).count()
    }
}

/// One frame in N damaged each way.
struct EveryNth {
    n: u32,
    out: u32,
    inn: u32,
}

impl Noise for EveryNth {
    fn damage_out(&mut self) -> bool {
        self.out += 1;
        self.out % self.n == 0
    }
    fn damage_in(&mut self) -> bool {
        self.inn += 1;
        // Offset from the outgoing count, so both ways see noise at different moments.
        (self.inn + self.n / 2) % self.n == 0
    }
}

/// The master side of a pty, with the line's byte time emulated. While no one holds the
/// slave side open, reads find nothing and writes are lost, as on an unplugged cable.
pub struct PtyLine {
    port: serialport::TTYPort,
    byte_time: Option<Duration>,
    stats: Arc<SimStats>,
}

impl PtyLine {
    fn pace(&self, bytes: usize) {
        if let Some(bt) = self.byte_time {
            let d = bt * bytes as u32;
            std::thread::sleep(d);
            self.stats
                .line_us
                .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        }
    }
}

impl Line for PtyLine {
    fn read_some(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        use serialport::SerialPort;
        self.port
            .set_timeout(timeout.max(Duration::from_millis(1)))
            .map_err(io::Error::from)?;
        match io::Read::read(&mut self.port, buf) {
            Ok(n) => {
                // The last byte arrives one byte time after the one before it.
                self.pace(n);
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Ok(0),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(0),
            Err(_) => {
                // EIO: no one has the slave side open.
                std::thread::sleep(timeout.min(Duration::from_millis(20)));
                Ok(0)
            }
        }
    }
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.pace(bytes.len());
        let _ = io::Write::write_all(&mut self.port, bytes);
        Ok(())
    }
}

/// A pty pair for a simulated station: the master side as the station's line, and the
/// slave side's path for the bridge.
pub fn open_pty(baud: Option<u32>, stats: Arc<SimStats>) -> io::Result<(PtyLine, String)> {
    use serialport::SerialPort;
    let (master, slave) = serialport::TTYPort::pair().map_err(io::Error::from)?;
    let path = slave
        .name()
        .ok_or_else(|| io::Error::other("the pty has no slave path"))?;
    drop(slave);
    Ok((
        PtyLine {
            port: master,
            byte_time: baud.map(|b| Duration::from_nanos(10_000_000_000 / u64::from(b.max(1)))),
            stats,
        },
        path,
    ))
}

/// Runs the station on `line` until `stop` says so.
pub fn serve<L: Line>(
    mut station: Station,
    line: L,
    stop: &dyn Fn(&Station) -> bool,
) -> io::Result<()> {
    let timing = Timing::for_baud(station.opts.baud.unwrap_or(1_000_000), 250, 5);
    let mut link = StationLink::new(line, timing, station.boot_id);
    if let Some(n) = station.opts.bad_crc {
        link.noise = Box::new(EveryNth {
            n: n.max(2),
            out: 0,
            inn: 0,
        });
    }
    let mut events = vec![Event::Booted {
        boot_id: station.boot_id,
    }];
    loop {
        station.operate(&mut events);
        for e in events.drain(..) {
            link.emit(&e)?;
        }
        if stop(&station) {
            return Ok(());
        }
        if let Some((seq, cmd)) = link.poll(Duration::from_millis(10))? {
            let response = match cmd {
                Ok(cmd) => station.execute(cmd, &mut events),
                Err(e) => error_response(&e),
            };
            if !station.opts.slow.is_zero() {
                std::thread::sleep(station.opts.slow);
            }
            link.respond(seq, response)?;
            if station
                .opts
                .reboot_every
                .is_some_and(|n| station.commands % n.max(1) == 0)
            {
                link.reboot(random_u32());
                station.reboot(&mut events);
            }
        }
    }
}

/// Writes `text` to `path` atomically (the slave path for a test or a script to read).
pub fn write_path_file(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text)?;
    std::fs::rename(tmp, path)
}

#[cfg(test)]
#[path = "sim_tests.rs"]
mod tests;
