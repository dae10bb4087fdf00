use diesel::RunQueryDsl;
use licentia::service::audit;

use crate::harness::{order, TestApp};

#[test]
fn every_change_is_recorded_and_tampering_is_detected() {
    let app = TestApp::start();
    let (_, o) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("H-1", "C-1", &[("SNP-SINGLE", 2)])),
    );
    app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("H-2", "C-1", &[("SNP-SINGLE", 1)])),
    );
    let ticket = o["ticket"].as_str().unwrap();

    let (s, h) = app.admin("GET", &format!("/api/v1/history?ticket={ticket}"), None);
    assert_eq!(s, 200, "{h}");
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(
        (
            h[0]["action"].as_str(),
            h[0]["actor"].as_str(),
            h[0]["interface"].as_str()
        ),
        (Some("order.created"), Some("admin"), Some("json"))
    );
    assert_eq!(h[0]["order_id"], o["order_id"]);

    let verify = || {
        app.rt
            .block_on(audit::verify_chain(&app.core, &crate::harness::system()))
            .unwrap()
    };
    let clean = verify();
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert!(clean.events >= 10);

    let mut c = app.db.connect();
    let target = clean.events / 2;
    diesel::sql_query(format!(
        "UPDATE events SET details = '{{\"forged\":true}}' WHERE id = {target}"
    ))
    .execute(&mut c)
    .unwrap();
    let report = verify();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!("event {target}: its content was changed"))),
        "{:?}",
        report.problems
    );

    // Deleting the newest event (the easiest to hide) is caught by the chain head.
    let app2 = TestApp::start();
    app2.admin(
        "POST",
        "/api/v1/orders",
        Some(order("H-3", "C-1", &[("SNP-SINGLE", 1)])),
    );
    let mut c2 = app2.db.connect();
    diesel::sql_query("DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")
        .execute(&mut c2)
        .unwrap();
    let report = app2
        .rt
        .block_on(audit::verify_chain(&app2.core, &crate::harness::system()))
        .unwrap();
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("events were deleted")),
        "{:?}",
        report.problems
    );
}

/// Rewrites the details of event `target` and recomputes the chain after it and its head,
/// as someone who can write the database would.
fn rewrite_and_recompute(app: &TestApp, target: i64) {
    use diesel::prelude::*;
    use licentia::store::history::{chain_hash, EventRow, GENESIS};
    use licentia::store::schema::{audit_head, events};
    let mut c = app.db.connect();
    let all: Vec<EventRow> = events::table.order(events::id.asc()).load(&mut c).unwrap();
    let mut prev = GENESIS.to_string();
    for mut e in all {
        if e.id == target {
            e.details = "{\"rewritten\":true}".into();
        }
        e.prev_hash = prev.clone();
        e.hash = chain_hash(&prev, &e);
        diesel::update(events::table.filter(events::id.eq(e.id)))
            .set((
                events::details.eq(&e.details),
                events::prev_hash.eq(&e.prev_hash),
                events::hash.eq(&e.hash),
            ))
            .execute(&mut c)
            .unwrap();
        prev = e.hash;
    }
    diesel::update(audit_head::table)
        .set(audit_head::last_hash.eq(&prev))
        .execute(&mut c)
        .unwrap();
}

#[test]
fn signed_checkpoints_catch_a_rewritten_and_recomputed_history() {
    use licentia::service::audit::Trust;
    use licentia::store::checkpoints::Checkpoint;
    let app = TestApp::start();
    let orders = |from: u32, n: u32| {
        for i in from..from + n {
            let (s, v) = app.admin(
                "POST",
                "/api/v1/orders",
                Some(order(&format!("CP-{i}"), "C-CP", &[("SNP-SINGLE", 1)])),
            );
            assert_eq!(s, 201, "{v}");
        }
    };
    orders(0, 3);
    let (s, first) = app.admin("POST", "/api/v1/history/checkpoints", None);
    assert_eq!(s, 201, "{first}");
    // Nothing happened since: nothing to sign.
    let (s, none) = app.admin("POST", "/api/v1/history/checkpoints", None);
    assert_eq!(
        (s, &none["checkpoint"]),
        (200, &serde_json::Value::Null),
        "{none}"
    );
    orders(3, 2);
    let (s, second) = app.admin("POST", "/api/v1/history/checkpoints", None);
    assert_eq!(s, 201, "{second}");
    assert!(second["event_id"].as_i64() > first["event_id"].as_i64());
    orders(5, 1);

    // What a careful vendor keeps outside the database: the public key and an export.
    let (s, kept) = app.admin("GET", "/api/v1/history/checkpoints", None);
    assert_eq!(s, 200, "{kept}");
    let kept_answer = kept.clone();
    let public_key = kept["public_key"].as_str().unwrap().to_string();
    assert_eq!(public_key.len(), 64);
    let exported: Vec<Checkpoint> = serde_json::from_value(kept["checkpoints"].clone()).unwrap();
    assert_eq!(exported.len(), 2);
    let hashes = app
        .rt
        .block_on(audit::hashes_after(
            &app.core,
            &crate::harness::system(),
            0,
            1000,
        ))
        .unwrap();
    let genuine = || Trust {
        public_key: Some(hex::decode(&public_key).unwrap()),
        checkpoints: Some(exported.clone()),
        hashes: None,
    };
    let verify = |trust: Trust| {
        app.rt
            .block_on(audit::verify_chain_with(
                &app.core,
                &crate::harness::system(),
                trust,
            ))
            .unwrap()
    };
    let clean = verify(genuine());
    assert!(clean.problems.is_empty(), "{:?}", clean.problems);
    assert_eq!(clean.checkpoints, 2);
    assert_eq!(clean.after_last_checkpoint, 1, "the last order's event");

    // Event 2 rewritten and the chain recomputed: the chain alone would hold, the
    // checkpoints do not, and say where to look.
    rewrite_and_recompute(&app, 2);
    let report = verify(Trust::default());
    let first_id = first["event_id"].as_i64().unwrap();
    assert!(
        !report
            .problems
            .iter()
            .any(|p| p.contains("content was changed")),
        "{:?}",
        report.problems
    );
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains(&format!(
                "event {first_id} does not have the hash the checkpoint signed"
            )) && p.contains(&format!("from 1 to {first_id} was changed"))),
        "{:?}",
        report.problems
    );

    // The attacker also replaces the audit key and re-signs every checkpoint: the database
    // agrees with itself, the key and the export kept outside do not.
    {
        use diesel::prelude::*;
        use licentia::protocol::crypto::SigningKey;
        use licentia::store::schema::{audit_checkpoints, audit_key, events};
        let forged = SigningKey::generate();
        let mut c = app.db.connect();
        diesel::update(audit_key::table)
            .set(audit_key::public_key.eq(hex::encode(forged.public())))
            .execute(&mut c)
            .unwrap();
        for k in &exported {
            let hash: String = events::table
                .filter(events::id.eq(k.event_id))
                .select(events::hash)
                .first(&mut c)
                .unwrap();
            let sig = forged.sign(&audit::checkpoint_message(k.event_id, &hash, k.signed_at));
            diesel::update(
                audit_checkpoints::table.filter(audit_checkpoints::event_id.eq(k.event_id)),
            )
            .set((
                audit_checkpoints::event_hash.eq(&hash),
                audit_checkpoints::signature.eq(hex::encode(sig)),
            ))
            .execute(&mut c)
            .unwrap();
        }
    }
    assert!(
        verify(Trust::default()).problems.is_empty(),
        "fooled, as said"
    );
    let with_key = verify(Trust {
        public_key: Some(hex::decode(&public_key).unwrap()),
        ..Trust::default()
    });
    assert_eq!(
        with_key
            .problems
            .iter()
            .filter(|p| p.contains("does not verify with the audit key"))
            .count(),
        2,
        "{:?}",
        with_key.problems
    );
    let with_export = verify(genuine());
    assert!(
        with_export
            .problems
            .iter()
            .any(|p| p.contains(&format!("event {first_id} does not have the hash"))),
        "{:?}",
        with_export.problems
    );
    // The hashes kept outside name the very event.
    let exact = verify(Trust {
        hashes: Some(hashes.clone()),
        ..genuine()
    });
    assert!(
        exact
            .problems
            .iter()
            .any(|p| p.starts_with("event 2: its hash is not the kept one")),
        "{:?}",
        exact.problems
    );
    // A kept copy that disagrees with a signed checkpoint is not taken for genuine.
    let mut wrong = hashes.clone();
    let at = wrong.iter().position(|(id, _)| *id == first_id).unwrap();
    wrong[at].1 = "0".repeat(64);
    let report = verify(Trust {
        hashes: Some(wrong),
        ..genuine()
    });
    assert!(
        report
            .problems
            .iter()
            .any(|p| p.contains("the kept copy is not genuine")),
        "{:?}",
        report.problems
    );

    // The same through the CLI, as a vendor runs it where no server runs.
    let file = app.db.dir.join("checkpoints.json");
    std::fs::write(&file, serde_json::to_string(&exported).unwrap()).unwrap();
    let (code, out, err) = crate::cli::licentia(
        &app.db,
        &[
            "audit",
            "verify",
            "--public-key",
            &public_key,
            "--checkpoints",
            file.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0, "{out}");
    assert!(
        out.contains(&format!("event {first_id} does not have the hash")),
        "{out}\n{err}"
    );
    let kept = app.db.dir.join("hashes.txt");
    std::fs::write(
        &kept,
        hashes
            .iter()
            .map(|(id, h)| format!("{id} {h}\n"))
            .collect::<String>(),
    )
    .unwrap();
    // The JSON API's answer serves as the checkpoints' export too.
    let answer = app.db.dir.join("answer.json");
    std::fs::write(&answer, kept_answer.to_string()).unwrap();
    let (code, out, _) = crate::cli::licentia(
        &app.db,
        &[
            "audit",
            "verify",
            "--hashes",
            kept.to_str().unwrap(),
            "--checkpoints",
            answer.to_str().unwrap(),
        ],
    );
    assert_ne!(code, 0);
    assert!(
        out.contains("event 2: its hash is not the kept one"),
        "{out}"
    );
    // The export, as the CLI writes it, is what verify reads.
    let (code, now, err) = crate::cli::licentia(&app.db, &["audit", "hashes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(now.lines().count(), hashes.len());
    assert!(now
        .lines()
        .all(|l| l.split_once(' ').is_some_and(|(_, h)| h.len() == 64)));
    let (code, _, err) = crate::cli::licentia(&app.db, &["audit", "verify", "--public-key", "xyz"]);
    assert_ne!(code, 0);
    assert!(err.contains("64 hex characters"), "{err}");
}

#[test]
fn deleting_signed_events_is_named_by_the_checkpoint() {
    use diesel::RunQueryDsl;
    let app = TestApp::start();
    for i in 0..2 {
        app.admin(
            "POST",
            "/api/v1/orders",
            Some(order(&format!("DEL-{i}"), "C-DEL", &[("SNP-SINGLE", 1)])),
        );
    }
    let (s, k) = app.admin("POST", "/api/v1/history/checkpoints", None);
    assert_eq!(s, 201, "{k}");
    let head = k["event_id"].as_i64().unwrap();
    // The newest events deleted and the head moved back, hashes and all.
    let mut c = app.db.connect();
    diesel::sql_query(format!("DELETE FROM events WHERE id = {head}"))
        .execute(&mut c)
        .unwrap();
    diesel::sql_query(format!(
        "UPDATE audit_head SET last_event_id = {0}, last_hash = (SELECT hash FROM events WHERE id = {0})",
        head - 1
    ))
    .execute(&mut c)
    .unwrap();
    let report = app
        .rt
        .block_on(audit::verify_chain(&app.core, &crate::harness::system()))
        .unwrap();
    assert_eq!(
        report.problems,
        [format!(
            "the checkpoint signed {} names event {head}, but the chain ends at event {}: \
             events were deleted",
            chrono::NaiveDateTime::parse_from_str(
                k["signed_at"].as_str().unwrap(),
                "%Y-%m-%dT%H:%M:%S%.f"
            )
            .unwrap()
            .format("%Y-%m-%d %H:%M:%S UTC"),
            head - 1
        )]
    );
}
