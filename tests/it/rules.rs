//! The store carries out the domain's rules: the license moves a confirmed update makes
//! (`domain::contact::settled`) are done on PostgreSQL by one SQL statement and on SQLite by
//! the Rust rule itself. This runs the store's settle on every case on the backend under test
//! and holds the result to the rule.
use diesel::prelude::*;
use licentia::client::online::Gateway;
use licentia::domain::contact::settled;
use licentia::domain::LicenseState;
use licentia::store::schema::{containers, licenses};
use licentia::store::{mirrors, updates::UpdateRow};

use crate::activation::{new_act, ticket_with};
use crate::harness::TestApp;

#[test]
fn the_store_settles_every_license_state_as_the_rule_says() {
    let app = TestApp::start();
    let gw = Gateway::new(&app.base);
    let cases: Vec<(LicenseState, bool)> = LicenseState::ALL
        .iter()
        .flat_map(|s| [(*s, true), (*s, false)])
        .collect();
    let (ticket, ids) = ticket_with(&app, "SETTLE-1", "SNP-SINGLE", cases.len() as i64);
    // A real container with an update issued from its counter 0 (not applied).
    let mut c = new_act(&gw);
    let request = c
        .request(crate::activation::FIRM, licentia::client::unix_now())
        .unwrap();
    let issued = gw.activate(&ticket, &ids[..1], &request).unwrap();
    let serial = issued.serial.clone();

    let mut conn = app.db.connect();
    let container_id: i64 = containers::table
        .filter(containers::serial.eq(&serial))
        .select(containers::id)
        .first(&mut conn)
        .unwrap();
    let firm_id: i64 = licenses::table
        .find(ids[0])
        .select(licenses::firm_id)
        .first(&mut conn)
        .unwrap();
    // Every license of the ticket in the container, one per case.
    for (id, (state, _)) in ids.iter().zip(&cases) {
        diesel::update(licenses::table.find(id))
            .set((
                licenses::state.eq(state.as_str()),
                licenses::serial.eq(Some(&serial)),
            ))
            .execute(&mut conn)
            .unwrap();
    }
    let held: Vec<i64> = ids
        .iter()
        .zip(&cases)
        .filter(|(_, (_, h))| *h)
        .map(|(id, _)| *id)
        .collect();
    let u = UpdateRow {
        id: issued.update_id,
        counter_from: 0,
        counter_to: 1,
        digest_after: "ab".repeat(32),
        content_after: r#"{"entries":{},"locked":false}"#.into(),
    };
    let now = chrono::Utc::now().naive_utc();
    let empty = licentia::protocol::FirmContent::default().digest();
    // A mirror at the update's counter but with another digest (as after a resynchronisation
    // took another state at that counter) is not settled.
    let other = "cd".repeat(32);
    let stale = mirrors::settle(
        &mut conn,
        container_id,
        &serial,
        firm_id,
        (&u, &other),
        &held,
        now,
    );
    assert!(stale.unwrap().is_none());
    let moved = mirrors::settle(
        &mut conn,
        container_id,
        &serial,
        firm_id,
        (&u, &empty),
        &held,
        now,
    )
    .unwrap()
    .expect("the mirror was at the update's counter");

    let mut want_moved = vec![];
    for (id, (state, h)) in ids.iter().zip(&cases) {
        let (now_state, now_serial): (String, Option<String>) = licenses::table
            .find(id)
            .select((licenses::state, licenses::serial))
            .first(&mut conn)
            .unwrap();
        let want = settled(*state, *h);
        if let Some(to) = want {
            want_moved.push((*id, to));
        }
        let want_state = want.unwrap_or(*state);
        assert_eq!(now_state, want_state.as_str(), "{state} held={h}");
        // Activated stays in the container; returned and deleted leave it.
        let keeps = want.is_none() || want == Some(LicenseState::Activated);
        assert_eq!(
            now_serial.is_some(),
            keeps,
            "{state} held={h}: serial {now_serial:?}"
        );
    }
    assert_eq!(moved, want_moved);
    assert!(
        want_moved.len() == 3,
        "the rule moves three of the cases: {want_moved:?}"
    );

    // The mirror has moved on: the same update settles nothing a second time.
    let again = mirrors::settle(
        &mut conn,
        container_id,
        &serial,
        firm_id,
        (&u, &empty),
        &held,
        now,
    );
    assert!(again.unwrap().is_none());
}
