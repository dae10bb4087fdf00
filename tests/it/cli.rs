use std::process::Command;

use crate::harness::TestDb;

fn licentia(db: &TestDb, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_licentia"))
        .args(args)
        .env("LICENTIA_DATABASE_URL", &db.url)
        .env("LICENTIA_DATA_DIR", &db.dir)
        .env("LICENTIA_LOG", "warn")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn the_cli_seeds_orders_shows_tickets_and_verifies_the_history() {
    let db = TestDb::new();
    let (code, out, err) = licentia(&db, &["demo"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("admin password (shown once): "), "{out}");
    let (_, again, _) = licentia(&db, &["demo"]);
    assert!(!again.contains("shown once"), "{again}");
    // The master key file is private.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(db.dir.join("master.key"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (code, out, err) = licentia(
        &db,
        &[
            "order",
            "create",
            "--customer",
            "C-77",
            "--item",
            "SNP-SINGLE=2",
            "--item",
            "SNP-TRIAL-30=1",
            "--erp-order-id",
            "9000",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let ticket = out.trim().to_string();
    assert_eq!(ticket.len(), 29, "{out}");
    let (code, shown, _) = licentia(&db, &["ticket", "show", &ticket.to_lowercase()]);
    assert_eq!(code, 0);
    assert_eq!(shown.matches("  license ").count(), 3, "{shown}");
    assert!(shown.contains("C-77"));

    let (code, _, err) = licentia(
        &db,
        &["order", "create", "--customer", "C-77", "--item", "NOPE=1"],
    );
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("unknown item: NOPE"), "{err}");
    let (code, _, err) = licentia(&db, &["ticket", "show", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAB"]);
    assert_eq!(code, 2, "{err}");

    let (code, out, _) = licentia(&db, &["user", "add", "erp-sap", "--role", "erp"]);
    assert_eq!(code, 0);
    assert!(out.contains("password: "));
    let (code, out, _) = licentia(&db, &["audit", "verify"]);
    assert_eq!(code, 0);
    assert!(out.contains("audit chain intact"), "{out}");

    let out = Command::new(env!("CARGO_BIN_EXE_licentia"))
        .args(["migrate"])
        .env("LICENTIA_LISTN", "x")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("LICENTIA_LISTN"));
}
