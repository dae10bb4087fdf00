//! The station simulator's tests (beside `sim.rs`, which holds the simulator itself).
use super::*;

fn opts(dir: &Path) -> SimOptions {
    SimOptions {
        station_id: "st-t".into(),
        slots: 2,
        dongle_dir: dir.to_path_buf(),
        dongles: 3,
        first_serial: "3-0900001".into(),
        baud: None,
        bad_crc: None,
        unplug_every: None,
        refuse_every: None,
        slow: Duration::ZERO,
        reboot_every: None,
        swap: Duration::ZERO,
        capacity: 65_536,
    }
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "dongle-bridge-{name}-{}-{}",
        std::process::id(),
        random_u32()
    ));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn ok(st: &mut Station, cmd: Command) -> Vec<u8> {
    let p = st.execute(cmd, &mut vec![]);
    crate::proto::read_response(&p).unwrap().unwrap()
}

fn err(st: &mut Station, cmd: Command) -> StationError {
    let p = st.execute(cmd, &mut vec![]);
    crate::proto::read_response(&p).unwrap().unwrap_err()
}

#[test]
fn a_resent_chunk_changes_nothing_and_a_gap_is_refused() {
    let dir = tmp("chunks");
    let mut st = Station::new(opts(&dir)).unwrap();
    let mut events = vec![];
    st.operate(&mut events);
    assert_eq!(
        events,
        vec![
            Event::Inserted {
                slot: 0,
                serial: "3-0900001".into()
            },
            Event::Inserted {
                slot: 1,
                serial: "3-0900002".into()
            }
        ]
    );
    let update: Vec<u8> = (0..2_500u32).map(|i| b'A' + (i % 26) as u8).collect();
    let crc = crc32c(&update);
    let begin = Command::WriteBegin {
        slot: 0,
        serial: "3-0900001".into(),
        len: update.len() as u32,
        crc,
    };
    assert_eq!(ok(&mut st, begin.clone()), 0u32.to_le_bytes());
    let chunk = |o: usize, n: usize| Command::WriteChunk {
        slot: 0,
        offset: o as u32,
        data: update[o..o + n].to_vec(),
    };
    assert_eq!(ok(&mut st, chunk(0, 1_024)), 1_024u32.to_le_bytes());
    // The same chunk again: still 1,024 held, the same bytes.
    assert_eq!(ok(&mut st, chunk(0, 1_024)), 1_024u32.to_le_bytes());
    assert_eq!(err(&mut st, chunk(2_048, 452)).code, ErrorCode::Gap);
    assert_eq!(ok(&mut st, chunk(1_024, 1_024)), 2_048u32.to_le_bytes());
    // Begun again for the same update: resumes where it was.
    assert_eq!(ok(&mut st, begin), 2_048u32.to_le_bytes());
    assert_eq!(ok(&mut st, chunk(2_048, 452)), 2_500u32.to_le_bytes());
    assert_eq!(
        &st.slots[0].buf.as_ref().unwrap().data[..],
        &update[..],
        "what is held is the update, byte for byte"
    );
    // Not an update the dongle accepts: refused whole, its counter unchanged.
    let e = err(&mut st, Command::WriteCommit { slot: 0, now: 1 });
    assert_eq!(e.code, ErrorCode::WriteFailed, "{e}");
    assert!(st.slots[0]
        .dongle
        .as_ref()
        .unwrap()
        .container
        .firms
        .is_empty());
    // Another dongle named, or an empty slot.
    let e = err(
        &mut st,
        Command::WriteBegin {
            slot: 1,
            serial: "3-0900001".into(),
            len: 1,
            crc: 0,
        },
    );
    assert_eq!(e.code, ErrorCode::WrongDongle);
    let e = err(
        &mut st,
        Command::Release {
            slot: 1,
            serial: "3-0900001".into(),
            outcome: Outcome::Failed,
        },
    );
    assert_eq!(
        e.code,
        ErrorCode::WrongDongle,
        "only the dongle named is released"
    );
    ok(
        &mut st,
        Command::Release {
            slot: 1,
            serial: "3-0900002".into(),
            outcome: Outcome::Failed,
        },
    );
    let e = err(&mut st, Command::ReadInfo { slot: 1 });
    assert_eq!(e.code, ErrorCode::NoDongle);
    let e = err(
        &mut st,
        Command::WriteBegin {
            slot: 0,
            serial: "3-0900001".into(),
            len: 70_000,
            crc: 0,
        },
    );
    assert_eq!(e.code, ErrorCode::DongleFull);
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn an_unplugged_dongle_fails_its_write_and_comes_back_later() {
    let dir = tmp("unplug");
    let mut o = opts(&dir);
    o.slots = 1;
    o.unplug_every = Some(1);
    let mut st = Station::new(o).unwrap();
    let mut events = vec![];
    st.operate(&mut events);
    let begin = Command::WriteBegin {
        slot: 0,
        serial: "3-0900001".into(),
        len: 2_000,
        crc: 1,
    };
    ok(&mut st, begin);
    ok(
        &mut st,
        Command::WriteChunk {
            slot: 0,
            offset: 0,
            data: vec![1; 1_000],
        },
    );
    let mut events = vec![];
    let p = st.execute(
        Command::WriteChunk {
            slot: 0,
            offset: 1_000,
            data: vec![1; 1_000],
        },
        &mut events,
    );
    assert_eq!(
        crate::proto::read_response(&p).unwrap().unwrap_err().code,
        ErrorCode::Removed
    );
    assert_eq!(
        events,
        vec![Event::Removed {
            slot: 0,
            serial: "3-0900001".into()
        }]
    );
    // The next two dongles come first, then the unplugged one again.
    let mut order = vec![];
    for _ in 0..3 {
        let mut ev = vec![];
        st.operate(&mut ev);
        if let Some(Event::Inserted { serial, .. }) = ev.first() {
            order.push(serial.clone());
        }
        // Its next dongles are unplugged too (every one): release them instead.
        let serial = order.last().cloned().unwrap_or_default();
        ok(
            &mut st,
            Command::Release {
                slot: 0,
                serial,
                outcome: Outcome::Failed,
            },
        );
    }
    assert_eq!(order, vec!["3-0900002", "3-0900003", "3-0900001"]);
    let _ = std::fs::remove_dir_all(dir);
}
