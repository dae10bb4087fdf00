//! What the bridge shows: a line per dongle as it is done, and a board with one line per
//! station (progress bar, the dongle in work) and the order's totals; or, with `--json`,
//! one JSON object a line for a line-control system.
use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::sync::Mutex;
use std::time::Instant;

use serde_json::{json, Value};

#[derive(Debug, Clone, Default)]
pub struct StationView {
    pub name: String,
    pub port: String,
    /// What it does now (connecting, idle, writing, waiting for the server …).
    pub activity: String,
    pub serial: Option<String>,
    pub done_bytes: u64,
    pub total_bytes: u64,
    pub programmed: u64,
    pub failed: u64,
    pub refused: u64,
}

#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub dongles: i64,
    pub programmed: i64,
    pub remaining: i64,
    pub failed: i64,
    pub complete: bool,
    pub server: String,
    pub pending_uploads: usize,
}

pub struct Console {
    json: bool,
    tty: bool,
    state: Mutex<Board>,
    started: Instant,
}

#[derive(Default)]
struct Board {
    stations: BTreeMap<String, StationView>,
    totals: Totals,
    drawn: usize,
    last_plain: Option<Instant>,
}

fn bar(done: u64, total: u64, width: usize) -> String {
    let filled = if total == 0 {
        0
    } else {
        ((done.min(total) as usize) * width) / total as usize
    };
    format!("[{}{}]", "#".repeat(filled), ".".repeat(width - filled))
}

impl Console {
    pub fn new(json: bool) -> Console {
        Console {
            json,
            tty: !json && std::io::stdout().is_terminal(),
            state: Mutex::new(Board::default()),
            started: Instant::now(),
        }
    }

    fn emit_json(&self, v: Value) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{v}");
        let _ = out.flush();
    }

    /// A log line: one per dongle done, and the bridge's own news.
    pub fn log(&self, kind: &str, station: &str, serial: &str, text: &str, fields: Value) {
        if self.json {
            let mut v = json!({"event": kind, "station": station, "serial": serial,
                "message": text, "at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)});
            if let (Some(o), Some(f)) = (v.as_object_mut(), fields.as_object()) {
                for (k, x) in f {
                    o.insert(k.clone(), x.clone());
                }
            }
            self.emit_json(v);
            return;
        }
        let mut b = self.state.lock().expect("console");
        let mut out = std::io::stdout().lock();
        if self.tty && b.drawn > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", b.drawn);
            b.drawn = 0;
        }
        let _ = writeln!(
            out,
            "{} {station:<8} {serial:<12} {text}",
            chrono::Local::now().format("%H:%M:%S")
        );
        let _ = out.flush();
        drop(out);
        if self.tty {
            self.draw(&mut b);
        }
    }

    pub fn station(&self, view: StationView) {
        let mut b = self.state.lock().expect("console");
        let changed = b
            .stations
            .get(&view.name)
            .is_none_or(|old| old.activity != view.activity || old.serial != view.serial);
        let name = view.name.clone();
        b.stations.insert(name, view.clone());
        if self.json && changed {
            drop(b);
            self.emit_json(
                json!({"event": "station", "station": view.name, "port": view.port,
                "activity": view.activity, "serial": view.serial, "programmed": view.programmed,
                "failed": view.failed, "refused": view.refused}),
            );
        }
    }

    pub fn totals(&self, t: Totals) {
        let mut b = self.state.lock().expect("console");
        b.totals = t;
    }

    /// Redraws the board (a terminal), or prints it every few seconds (a log), or the
    /// order's totals as JSON.
    pub fn tick(&self) {
        let mut b = self.state.lock().expect("console");
        if self.json {
            if b.last_plain.is_none_or(|t| t.elapsed().as_secs() >= 2) {
                b.last_plain = Some(Instant::now());
                let t = b.totals.clone();
                drop(b);
                self.emit_json(json!({"event": "order", "dongles": t.dongles,
                    "programmed": t.programmed, "remaining": t.remaining, "failed": t.failed,
                    "complete": t.complete, "server": t.server,
                    "pending_uploads": t.pending_uploads}));
            }
            return;
        }
        if self.tty {
            let mut out = std::io::stdout().lock();
            if b.drawn > 0 {
                let _ = write!(out, "\x1b[{}A\x1b[J", b.drawn);
                b.drawn = 0;
            }
            drop(out);
            self.draw(&mut b);
        } else if b.last_plain.is_none_or(|t| t.elapsed().as_secs() >= 10) {
            b.last_plain = Some(Instant::now());
            let lines = self.lines(&b);
            let mut out = std::io::stdout().lock();
            for l in lines {
                let _ = writeln!(out, "{l}");
            }
            let _ = out.flush();
        }
    }

    fn lines(&self, b: &Board) -> Vec<String> {
        let mut out = vec![];
        for s in b.stations.values() {
            out.push(format!(
                "  {:<8} {} {:>5}/{:<5} {:<12} {:<28} ok {} failed {} refused {}",
                s.name,
                bar(s.done_bytes, s.total_bytes, 20),
                s.done_bytes,
                s.total_bytes,
                s.serial.as_deref().unwrap_or("-"),
                s.activity,
                s.programmed,
                s.failed,
                s.refused
            ));
        }
        let t = &b.totals;
        out.push(format!(
            "  order: {} of {} programmed {} {} remaining, {} failures  server {}  receipts to upload {}  {}s",
            t.programmed,
            t.dongles,
            bar(t.programmed as u64, t.dongles as u64, 30),
            t.remaining,
            t.failed,
            t.server,
            t.pending_uploads,
            self.started.elapsed().as_secs()
        ));
        out
    }

    fn draw(&self, b: &mut Board) {
        let lines = self.lines(b);
        let mut out = std::io::stdout().lock();
        for l in &lines {
            let _ = writeln!(out, "{l}");
        }
        let _ = out.flush();
        b.drawn = lines.len();
    }
}
