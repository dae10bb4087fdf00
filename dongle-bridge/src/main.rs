//! dongle-bridge: programs dongles in the production line's stations with the licenses of a
//! Licentia production order (README "Dongle bridge"; the station protocol in PROTOCOL.md).
mod bench;
mod console;
mod frame;
mod journal;
mod link;
mod proto;
mod run;
mod server;
mod sim;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "dongle-bridge",
    version,
    about = "Programs dongles on the production line with the licenses of a Licentia production order"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Programs dongles: serves the stations, asks the server for each dongle's update,
    /// uploads the receipts.
    Run(RunArgs),
    /// Dongles programmed per minute per station, with a simulated station on a pty at a
    /// real line speed, and where the time goes.
    Bench(BenchArgs),
    /// A simulated programming station on a pty, with emulated dongles and fault injection.
    Simulate(SimulateArgs),
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// Licentia's URL.
    #[arg(long, env = "DONGLE_BRIDGE_SERVER")]
    server: String,
    /// The production line's user (role production).
    #[arg(long, env = "DONGLE_BRIDGE_USER")]
    user: String,
    #[arg(long, env = "DONGLE_BRIDGE_PASSWORD", hide_env_values = true)]
    password: String,
    /// The production order to program.
    #[arg(long)]
    order: i64,
    /// A station: PORT or NAME=PORT; PORT is a device path or usb:VID:PID[#N] (hex ids,
    /// the Nth such port). Once per station.
    #[arg(long = "station", required = true)]
    stations: Vec<String>,
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    /// The journal file (fsynced, hash-chained); the order's license template is kept
    /// beside it.
    #[arg(long, default_value = "dongle-bridge.journal")]
    journal: PathBuf,
    /// One JSON object a line, for a line-control system.
    #[arg(long)]
    json: bool,
    /// Stop when the order is complete and every receipt is uploaded.
    #[arg(long)]
    until_complete: bool,
    /// Stop after this many seconds with nothing to do and nothing to upload.
    #[arg(long)]
    idle_exit: Option<u64>,
    /// How often a command is sent again before the station is taken as gone.
    #[arg(long, default_value_t = 5)]
    retries: u32,
}

fn run(a: RunArgs) -> Result<(), String> {
    let stations = a
        .stations
        .iter()
        .enumerate()
        .map(|(i, s)| run::StationSpec::parse(s, i + 1))
        .collect::<Result<Vec<_>, _>>()?;
    let mut names: Vec<&str> = stations.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    names.dedup();
    if names.len() != stations.len() {
        return Err("two stations have the same name".into());
    }
    run::run(run::RunOptions {
        server: a.server,
        user: a.user,
        password: a.password,
        order: a.order,
        stations,
        baud: a.baud,
        journal: a.journal,
        json: a.json,
        until_complete: a.until_complete,
        idle_exit: a.idle_exit.map(Duration::from_secs),
        retries: a.retries,
        stop_after: None,
    })
    .map(|_| ())
}

#[derive(clap::Args, Clone)]
struct BenchArgs {
    #[arg(long, env = "DONGLE_BRIDGE_SERVER")]
    server: String,
    #[arg(long, env = "DONGLE_BRIDGE_USER")]
    user: String,
    #[arg(long, env = "DONGLE_BRIDGE_PASSWORD", hide_env_values = true)]
    password: String,
    /// A production order with at least this many dongles left to program.
    #[arg(long)]
    order: i64,
    #[arg(long, default_value_t = 20)]
    dongles: usize,
    /// The simulated line's speed (8N1; every byte takes 10 bit times).
    #[arg(long, default_value_t = 115_200)]
    baud: u32,
    #[arg(long, default_value = "3-9000001")]
    first_serial: String,
}

#[derive(clap::Args, Clone)]
struct SimulateArgs {
    /// The station's id, as `hello` answers it.
    #[arg(long, default_value = "sim-1")]
    station_id: String,
    #[arg(long, default_value_t = 4)]
    slots: u8,
    /// Folder of the emulated dongles (one folder per serial with its container.json);
    /// those already there are inserted first.
    #[arg(long)]
    dongle_dir: PathBuf,
    /// Fresh dongles to make.
    #[arg(long, default_value_t = 0)]
    dongles: usize,
    /// The first fresh dongle's serial; the next ones count up.
    #[arg(long, default_value = "3-5000001")]
    first_serial: String,
    /// Emulate the line's byte time at this speed (8N1); none: as fast as the pty goes.
    #[arg(long)]
    baud: Option<u32>,
    /// Damage one frame in N, each way (line noise: bad CRC).
    #[arg(long)]
    bad_crc: Option<u32>,
    /// Pull every Nth dongle out in the middle of its write (the operator puts it back later).
    #[arg(long)]
    unplug_every: Option<u32>,
    /// Every Nth dongle refuses the write (into the reject bin).
    #[arg(long)]
    refuse_every: Option<u32>,
    /// A slow station: this many milliseconds before every response.
    #[arg(long, default_value_t = 0)]
    slow_ms: u64,
    /// Reboot after every N commands.
    #[arg(long)]
    reboot_every: Option<u32>,
    /// Milliseconds the operator takes to put in the next dongle.
    #[arg(long, default_value_t = 20)]
    swap_ms: u64,
    /// Bytes of update a dongle can hold.
    #[arg(long, default_value_t = 65_536)]
    capacity: u32,
    /// Also write the pty's path to this file.
    #[arg(long)]
    path_file: Option<PathBuf>,
    /// Stop when every dongle was released.
    #[arg(long)]
    exit_when_empty: bool,
}

impl SimulateArgs {
    fn options(&self) -> sim::SimOptions {
        sim::SimOptions {
            station_id: self.station_id.clone(),
            slots: self.slots.max(1),
            dongle_dir: self.dongle_dir.clone(),
            dongles: self.dongles,
            first_serial: self.first_serial.clone(),
            baud: self.baud,
            bad_crc: self.bad_crc,
            unplug_every: self.unplug_every,
            refuse_every: self.refuse_every,
            slow: Duration::from_millis(self.slow_ms),
            reboot_every: self.reboot_every,
            swap: Duration::from_millis(self.swap_ms),
            capacity: self.capacity,
        }
    }
}

fn simulate(a: SimulateArgs) -> Result<(), String> {
    let station = sim::Station::new(a.options()).map_err(|e| {
        format!(
            "cannot set up the dongles in {}: {e}",
            a.dongle_dir.display()
        )
    })?;
    let (line, path) = sim::open_pty(a.baud, station.stats.clone())
        .map_err(|e| format!("cannot open a pty: {e}"))?;
    println!("station {} on {path}", a.station_id);
    if let Some(f) = &a.path_file {
        sim::write_path_file(f, &path).map_err(|e| format!("{}: {e}", f.display()))?;
    }
    let exit_when_empty = a.exit_when_empty;
    sim::serve(station, line, &|s| exit_when_empty && s.waiting() == 0)
        .map_err(|e| format!("the station stopped: {e}"))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let r = match cli.cmd {
        Cmd::Run(a) => run(a),
        Cmd::Simulate(a) => simulate(a),
        Cmd::Bench(a) => bench::bench(bench::BenchOptions {
            server: a.server,
            user: a.user,
            password: a.password,
            order: a.order,
            dongles: a.dongles,
            baud: a.baud,
            first_serial: a.first_serial,
        }),
    };
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("dongle-bridge: {e}");
            ExitCode::from(1)
        }
    }
}
