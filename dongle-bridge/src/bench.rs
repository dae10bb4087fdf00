//! `dongle-bridge bench`: one simulated station on a pty at a real line speed (the byte
//! time emulated), the bridge programming its dongles against a real server, and where the
//! time went: the serial line, the server's round trips, the dongles' cryptography.
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::run::{self, Port, RunOptions, StationSpec};
use crate::sim::{self, SimOptions, Station};

pub struct BenchOptions {
    pub server: String,
    pub user: String,
    pub password: String,
    pub order: i64,
    pub dongles: usize,
    pub baud: u32,
    pub first_serial: String,
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

pub fn bench(o: BenchOptions) -> Result<(), String> {
    let mut b = [0u8; 4];
    openssl::rand::rand_bytes(&mut b).expect("CSPRNG");
    let dir = std::env::temp_dir().join(format!("dongle-bridge-bench-{}", hex::encode(b)));
    let station = Station::new(SimOptions {
        station_id: "bench".into(),
        slots: 1,
        dongle_dir: dir.join("dongles"),
        dongles: o.dongles,
        first_serial: o.first_serial.clone(),
        baud: Some(o.baud),
        bad_crc: None,
        unplug_every: None,
        refuse_every: None,
        slow: Duration::ZERO,
        reboot_every: None,
        swap: Duration::ZERO,
        capacity: 65_536,
    })
    .map_err(|e| format!("cannot make the dongles: {e}"))?;
    let stats = station.stats.clone();
    let (line, path) = sim::open_pty(Some(o.baud), stats.clone())
        .map_err(|e| format!("cannot open a pty: {e}"))?;
    let stop = Arc::new(AtomicBool::new(false));
    let sim_thread = {
        let stop = stop.clone();
        std::thread::spawn(move || sim::serve(station, line, &|_| stop.load(Ordering::Relaxed)))
    };
    let started = Instant::now();
    let summary = run::run(RunOptions {
        server: o.server,
        user: o.user,
        password: o.password,
        order: o.order,
        stations: vec![StationSpec {
            name: "bench".into(),
            port: Port::Path(path),
        }],
        baud: o.baud,
        journal: dir.join("bench.journal"),
        json: false,
        until_complete: false,
        idle_exit: None,
        retries: 5,
        stop_after: Some(o.dongles as u64),
    });
    let wall = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let _ = sim_thread.join();
    let _ = std::fs::remove_dir_all(&dir);
    let s = summary?;
    let programmed = stats.programmed.load(Ordering::Relaxed);
    if programmed == 0 {
        return Err("no dongle was programmed (is the order complete or cancelled?)".into());
    }
    let n = programmed as f64;
    let per = secs(wall) / n;
    let line = Duration::from_micros(stats.line_us.load(Ordering::Relaxed));
    let crypto = Duration::from_micros(stats.crypto_us.load(Ordering::Relaxed));
    // The line time is what the station spent sending and receiving at the baud rate; the
    // bridge's wait for responses also holds the station's crypto and the line.
    let other = secs(s.line_wait).max(secs(line)) - secs(line) - secs(crypto);
    let rest = (secs(wall) - secs(s.line_wait) - secs(s.server)).max(0.0);
    println!(
        "dongle bench: {programmed} dongles on 1 station at {} baud in {:.1} s",
        o.baud,
        secs(wall)
    );
    println!(
        "  {:.1} dongles per minute per station ({:.2} s per dongle; update {} bytes)",
        60.0 / per,
        per,
        s.update_bytes
    );
    println!("  where the time goes, per dongle:");
    let row = |what: &str, d: f64| {
        println!(
            "    {what:<66} {:>7.3} s {:>5.1} %",
            d / n,
            100.0 * d / secs(wall)
        );
    };
    row(
        "serial transfer (frames at the line's byte time)",
        secs(line),
    );
    row(
        "server round trips (the dongle's update: program)",
        secs(s.server),
    );
    row(
        "dongle cryptography (request, verify + decrypt + apply, receipt)",
        secs(crypto),
    );
    row(
        "station and link (waits, acks, flash writes)",
        other.max(0.0),
    );
    row("bridge (journal fsyncs, HTTP set-up, events)", rest);
    println!(
        "    {:<66} {:>7.3} s (in the background, beside the next dongle)",
        "receipt uploads",
        secs(s.uploads) / n
    );
    Ok(())
}
