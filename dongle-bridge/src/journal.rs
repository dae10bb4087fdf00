//! The bridge's journal: every step of every dongle, appended and fsynced before the next
//! step is taken, each entry chained to the one before by SHA-256. After a crash, a power
//! cut or a server outage the bridge reads it back and goes on from there: a dongle the
//! journal shows written is never written again, and a receipt it holds is uploaded until
//! the server has it.
use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, Write};
use std::path::Path;
#[cfg(test)]
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum Step {
    /// The server's update for the dongle (before it is written).
    Update {
        slot: i64,
        update_id: i64,
        counter_from: i64,
        counter_to: i64,
        expires_at: String,
        update: String,
    },
    /// The commit is about to go to the station: from here the update may be in the dongle.
    Commit { update_id: i64 },
    /// The dongle applied the update.
    Written { update_id: i64, counter: u64 },
    /// The dongle's receipt, read back (to be uploaded).
    Receipt { receipt: String, lock: bool },
    /// The server has the receipt.
    Uploaded { programmed: bool },
    /// The server refused the receipt (kept, not sent again).
    UploadRefused { code: String, message: String },
    /// The write failed; to be reported.
    Failed { written: bool, reason: String },
    /// The server has the failure.
    FailureReported,
    /// The server refused the dongle.
    Refused { code: String, message: String },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Entry {
    pub n: u64,
    pub at: String,
    pub production_order_id: i64,
    pub station: String,
    pub serial: String,
    #[serde(flatten)]
    pub step: Step,
    pub prev: String,
    pub hash: String,
}

fn hash_of(e: &Entry) -> String {
    let mut bare = e.clone();
    bare.hash = String::new();
    let body = serde_json::to_string(&bare).expect("entry");
    hex::encode(openssl::sha::sha256(
        format!("{}\n{body}", e.prev).as_bytes(),
    ))
}

const GENESIS: &str = "licentia-dongle-bridge-journal-v1";

pub struct Journal {
    file: File,
    last: String,
    pub entries: Vec<Entry>,
}

/// Where a dongle stands, from its entries.
#[derive(Debug, Clone, Default)]
pub struct DongleState {
    /// The update being written (none after a failure voided it).
    pub update: Option<Step>,
    pub commit_sent: bool,
    pub written: bool,
    /// A receipt read and not yet uploaded, or uploaded.
    pub receipt: Option<String>,
    pub uploaded: bool,
    pub refused: Option<(String, String)>,
}

impl Journal {
    /// Opens (or makes) the journal and checks its chain. A last line cut short (a power
    /// cut during the append) was never acted on and is dropped; a damaged or changed line
    /// before the end stops the bridge.
    pub fn open(path: &Path) -> io::Result<Journal> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)?;
        let mut entries = vec![];
        let mut last = GENESIS.to_string();
        let mut good_len = 0u64;
        {
            let mut reader = io::BufReader::new(&file);
            let mut line = String::new();
            let mut no = 0;
            loop {
                line.clear();
                let n = reader.read_line(&mut line)?;
                if n == 0 {
                    break;
                }
                no += 1;
                let complete = line.ends_with('\n');
                let parsed: Option<Entry> = serde_json::from_str(line.trim_end()).ok();
                match parsed {
                    Some(e) if complete && e.prev == last && hash_of(&e) == e.hash => {
                        last = e.hash.clone();
                        good_len += n as u64;
                        entries.push(e);
                    }
                    _ => {
                        let mut rest = String::new();
                        reader.read_to_string_lossy(&mut rest)?;
                        if !complete || rest.is_empty() && parsed.is_none() {
                            // A torn last append: it never happened.
                            break;
                        }
                        return Err(io::Error::other(format!(
                            "the journal {} is damaged at line {no}: its hash chain does not hold \
                             (a line was changed, removed or inserted); keep the file for \
                             inspection and start the bridge with another journal",
                            path.display()
                        )));
                    }
                }
            }
        }
        if file.metadata()?.len() != good_len {
            file.set_len(good_len)?;
            file.sync_all()?;
        }
        if !existed {
            if let Some(dir) = path.parent() {
                File::open(dir)?.sync_all()?;
            }
        }
        use std::io::Seek;
        file.seek(io::SeekFrom::End(0))?;
        Ok(Journal {
            file,
            last,
            entries,
        })
    }

    /// Appends a step and syncs it to disk before returning.
    pub fn append(
        &mut self,
        order: i64,
        station: &str,
        serial: &str,
        step: Step,
    ) -> io::Result<()> {
        let mut e = Entry {
            n: self.entries.len() as u64 + 1,
            at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            production_order_id: order,
            station: station.into(),
            serial: serial.into(),
            step,
            prev: self.last.clone(),
            hash: String::new(),
        };
        e.hash = hash_of(&e);
        let mut line = serde_json::to_string(&e).expect("entry");
        line.push('\n');
        self.file.write_all(line.as_bytes())?;
        self.file.sync_data()?;
        self.last = e.hash.clone();
        self.entries.push(e);
        Ok(())
    }

    /// Where dongle `serial` stands in production order `order`.
    pub fn dongle(&self, order: i64, serial: &str) -> DongleState {
        let mut s = DongleState::default();
        for e in self
            .entries
            .iter()
            .filter(|e| e.production_order_id == order && e.serial == serial)
        {
            match &e.step {
                Step::Update { .. } => {
                    s.update = Some(e.step.clone());
                    s.commit_sent = false;
                    s.written = false;
                    s.refused = None;
                }
                Step::Commit { .. } => s.commit_sent = true,
                Step::Written { .. } => s.written = true,
                // A lock's receipt (a blacklisted dongle) programs nothing.
                Step::Receipt {
                    receipt,
                    lock: false,
                } => s.receipt = Some(receipt.clone()),
                Step::Receipt { lock: true, .. } => {}
                Step::Uploaded { .. } | Step::UploadRefused { .. } => s.uploaded = true,
                Step::Failed { .. } => {
                    s.update = None;
                    s.commit_sent = false;
                    s.written = false;
                }
                Step::FailureReported => {}
                Step::Refused { code, message } => {
                    s.refused = Some((code.clone(), message.clone()))
                }
            }
        }
        s
    }

    /// What the server has not heard yet: receipts to upload and failures to report, in
    /// the order they happened (index of the entry).
    pub fn pending(&self, order: i64) -> Vec<&Entry> {
        let mut open: BTreeMap<(String, u8), usize> = BTreeMap::new();
        for (i, e) in self.entries.iter().enumerate() {
            if e.production_order_id != order {
                continue;
            }
            let key = |k: u8| (e.serial.clone(), k);
            match &e.step {
                Step::Receipt { .. } => {
                    open.insert(key(0), i);
                }
                Step::Uploaded { .. } | Step::UploadRefused { .. } => {
                    open.remove(&key(0));
                }
                Step::Failed { .. } => {
                    open.insert(key(1), i);
                }
                Step::FailureReported => {
                    open.remove(&key(1));
                }
                _ => {}
            }
        }
        let mut idx: Vec<usize> = open.into_values().collect();
        idx.sort();
        idx.into_iter().map(|i| &self.entries[i]).collect()
    }
}

trait ReadRest {
    fn read_to_string_lossy(&mut self, out: &mut String) -> io::Result<()>;
}

impl<R: BufRead> ReadRest for R {
    fn read_to_string_lossy(&mut self, out: &mut String) -> io::Result<()> {
        let mut b = vec![];
        io::Read::read_to_end(self, &mut b)?;
        out.push_str(&String::from_utf8_lossy(&b));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp() -> PathBuf {
        let mut b = [0u8; 4];
        openssl::rand::rand_bytes(&mut b).unwrap();
        std::env::temp_dir().join(format!(
            "dongle-bridge-journal-{}-{}/order.journal",
            std::process::id(),
            hex::encode(b)
        ))
    }

    fn update() -> Step {
        Step::Update {
            slot: 1,
            update_id: 7,
            counter_from: 0,
            counter_to: 1,
            expires_at: "x".into(),
            update: "U".into(),
        }
    }

    #[test]
    fn the_journal_reads_back_and_tells_where_each_dongle_stands() {
        let p = tmp();
        {
            let mut j = Journal::open(&p).unwrap();
            j.append(3, "st-1", "3-1", update()).unwrap();
            j.append(3, "st-1", "3-1", Step::Commit { update_id: 7 })
                .unwrap();
            j.append(
                3,
                "st-1",
                "3-1",
                Step::Written {
                    update_id: 7,
                    counter: 1,
                },
            )
            .unwrap();
            j.append(
                3,
                "st-1",
                "3-1",
                Step::Receipt {
                    receipt: "R".into(),
                    lock: false,
                },
            )
            .unwrap();
            j.append(3, "st-2", "3-2", update()).unwrap();
            j.append(
                3,
                "st-2",
                "3-2",
                Step::Failed {
                    written: false,
                    reason: "removed".into(),
                },
            )
            .unwrap();
        }
        let j = Journal::open(&p).unwrap();
        assert_eq!(j.entries.len(), 6);
        let a = j.dongle(3, "3-1");
        assert!(a.written && a.receipt.as_deref() == Some("R") && !a.uploaded);
        let b = j.dongle(3, "3-2");
        assert!(
            b.update.is_none() && !b.written,
            "a failure voids the update"
        );
        let pending: Vec<(&str, &Step)> = j
            .pending(3)
            .iter()
            .map(|e| (e.serial.as_str(), &e.step))
            .collect();
        assert_eq!(pending.len(), 2);
        assert_eq!(pending[0].0, "3-1");
        assert!(j.pending(4).is_empty());
        // A blacklisted dongle's lock receipt is uploaded, but programs nothing.
        let mut j = j;
        j.append(
            3,
            "st-1",
            "3-3",
            Step::Receipt {
                receipt: "L".into(),
                lock: true,
            },
        )
        .unwrap();
        assert!(j.dongle(3, "3-3").receipt.is_none());
        assert_eq!(j.pending(3).len(), 3);
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }

    #[test]
    fn a_torn_last_line_is_dropped_and_a_changed_line_stops_the_bridge() {
        let p = tmp();
        {
            let mut j = Journal::open(&p).unwrap();
            j.append(1, "s", "3-1", update()).unwrap();
            j.append(1, "s", "3-1", Step::Commit { update_id: 7 })
                .unwrap();
        }
        // A power cut in the middle of the third append.
        let mut f = OpenOptions::new().append(true).open(&p).unwrap();
        f.write_all(b"{\"n\":3,\"at\":\"2026").unwrap();
        drop(f);
        let mut j = Journal::open(&p).unwrap();
        assert_eq!(j.entries.len(), 2);
        j.append(
            1,
            "s",
            "3-1",
            Step::Written {
                update_id: 7,
                counter: 1,
            },
        )
        .unwrap();
        drop(j);
        assert_eq!(Journal::open(&p).unwrap().entries.len(), 3);

        // Someone edits the first line: the chain breaks there.
        let text = std::fs::read_to_string(&p).unwrap();
        std::fs::write(&p, text.replacen("\"slot\":1", "\"slot\":2", 1)).unwrap();
        let e = Journal::open(&p).err().expect("refused");
        assert!(e.to_string().contains("damaged at line 1"), "{e}");
        // A line removed from the middle.
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&p, format!("{}\n{}\n", lines[0], lines[2])).unwrap();
        let e = Journal::open(&p).err().expect("refused");
        assert!(e.to_string().contains("damaged at line 2"), "{e}");
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }
}
