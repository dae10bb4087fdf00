use diesel::{ExpressionMethods, QueryDsl, RunQueryDsl, TextExpressionMethods};

use crate::harness::{backend, order, TestApp};

/// PostgreSQL restarted or a connection cut: the writers and readers connect anew, and the
/// write that met the cut connection is not half done.
#[test]
fn lost_database_connections_are_made_anew() {
    if backend() != "postgres" {
        // Visible, not a silent pass.
        crate::harness::skip(
            "lost_database_connections_are_made_anew",
            "SQLite has no connection to lose; runs with TEST_BACKEND=postgres",
        );
        return;
    }
    let app = TestApp::start();
    let (s, _) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(order("P-1", "C", &[("SNP-SINGLE", 1)])),
    );
    assert_eq!(s, 201);
    let mut c = app.db.connect();
    diesel::sql_query(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .execute(&mut c)
    .unwrap();
    let mut statuses = vec![];
    for _ in 0..10 {
        let (s, v) = app.admin(
            "POST",
            "/api/v1/orders",
            Some(order("P-2", "C", &[("SNP-SINGLE", 1)])),
        );
        statuses.push(s);
        if s == 201 || s == 200 {
            assert_eq!(v["lines"][0]["licenses"].as_array().unwrap().len(), 1);
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(
        statuses.iter().any(|s| *s == 201 || *s == 200),
        "{statuses:?}"
    );
    assert_eq!((app.count("orders"), app.count("licenses")), (2, 2));
    let (s, _) = app.admin("GET", "/api/v1/orders/erp/P-1", None);
    assert_eq!(s, 200);
}

/// The database of `tdb` with one writer on either backend.
fn one_writer(tdb: &crate::harness::TestDb) -> licentia::store::Db {
    use licentia::store::{Db, DbOptions};
    Db::open(
        &tdb.url,
        &DbOptions {
            pool_size: 2,
            writer_batch_max: 256,
            pg_writers: 1,
            pg_writer_batch_max: 64,
        },
    )
    .unwrap()
}

/// Writes queued together run in one group transaction. One that fails leaves nothing, and
/// those grouped with it, before and after, are committed and answered as they ran; a
/// failing write alone leaves nothing either.
#[test]
fn a_failing_write_leaves_nothing_and_its_group_goes_on() {
    use licentia::error::Error;
    use licentia::store::schema::customers;

    let tdb = crate::harness::TestDb::new();
    let db = one_writer(&tdb);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let add = |c: &mut licentia::store::Conn, external_id: String| {
        let now = chrono::Utc::now().naive_utc();
        diesel::insert_into(customers::table)
            .values((
                customers::external_id.eq(external_id),
                customers::name.eq("group test"),
                customers::email.eq(""),
                customers::locale.eq("en"),
                customers::created_at.eq(now),
                customers::updated_at.eq(now),
            ))
            .execute(c)
            .map_err(Error::from)
    };
    let answers: Vec<Result<i32, String>> = rt.block_on(async {
        // The first write holds the writer, so that the others queue behind it and then run
        // as one group.
        let held = db.clone();
        let hold = tokio::spawn(async move {
            held.write(|_| {
                std::thread::sleep(std::time::Duration::from_millis(400));
                Ok(())
            })
            .await
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let mut tasks = vec![];
        for i in 0..30 {
            let db = db.clone();
            tasks.push(tokio::spawn(async move {
                db.write(move |c| {
                    add(c, format!("G-{i}"))?;
                    if i % 3 == 1 {
                        return Err(Error::Conflict(format!("write {i} refused")));
                    }
                    // A bug in a write (a panic) fails that write only.
                    if i == 29 {
                        panic!("write {i} panicked on purpose");
                    }
                    Ok(i)
                })
                .await
            }));
        }
        hold.await.unwrap().unwrap();
        let mut answers = vec![];
        for t in tasks {
            answers.push(t.await.unwrap().map_err(|e| e.to_string()));
        }
        answers
    });
    for (i, a) in answers.iter().enumerate() {
        if i == 29 {
            assert!(
                a.as_ref()
                    .is_err_and(|e| e.contains("a write panicked: write 29 panicked on purpose")),
                "{i}: {a:?}"
            );
        } else if i % 3 == 1 {
            assert!(
                a.as_ref()
                    .is_err_and(|e| e.contains(&format!("write {i} refused"))),
                "{i}: {a:?}"
            );
        } else {
            assert_eq!(a, &Ok(i as i32));
        }
    }
    // Alone in its group.
    let alone = rt.block_on(db.write(move |c| {
        add(c, "G-alone".into())?;
        Err::<(), _>(Error::Conflict("refused alone".into()))
    }));
    assert!(alone.is_err());
    // Alone and panicking: the writer (the only one on SQLite) lives on.
    let panicked = rt.block_on(db.write(move |c| -> Result<(), Error> {
        add(c, "G-panic".into())?;
        panic!("alone");
    }));
    assert!(panicked.is_err_and(|e| e.to_string().contains("a write panicked: alone")));
    rt.block_on(db.write(move |c| add(c, "G-after".into())))
        .unwrap();
    let mut c = tdb.connect();
    let mut stored: Vec<String> = customers::table
        .select(customers::external_id)
        .filter(customers::external_id.like("G-%"))
        .load(&mut c)
        .unwrap();
    stored.sort();
    let mut expected: Vec<String> = (0..29)
        .filter(|i| i % 3 != 1)
        .map(|i| format!("G-{i}"))
        .chain(["G-after".to_string()])
        .collect();
    expected.sort();
    assert_eq!(stored, expected);
}

/// On SQLite, another process that holds the write lock past busy_timeout (a long CLI write,
/// a second node) makes the server answer its writes busy (503: send again), not with a 500;
/// once the lock is released, writes go through again.
#[test]
fn writes_locked_out_past_the_busy_timeout_are_answered_busy() {
    use diesel::connection::SimpleConnection;
    use licentia::error::Error;

    if crate::harness::backend() != "sqlite" {
        // Visible, not a silent pass.
        crate::harness::skip(
            "writes_locked_out_past_the_busy_timeout_are_answered_busy",
            "SQLite's database-wide write lock; PostgreSQL locks rows (runs on SQLite)",
        );
        return;
    }
    let tdb = crate::harness::TestDb::new();
    let db = one_writer(&tdb);
    let rt = tokio::runtime::Runtime::new().unwrap();
    let mut other = tdb.connect();
    other.batch_execute("BEGIN IMMEDIATE").unwrap();
    let e = rt.block_on(db.write(|_| Ok(()))).unwrap_err();
    assert!(matches!(e, Error::Busy), "{e:?}");
    assert_eq!(licentia::api::status_of(&e).as_u16(), 503);
    other.batch_execute("ROLLBACK").unwrap();
    rt.block_on(db.write(|_| Ok(()))).unwrap();
}
