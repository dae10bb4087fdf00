//! The protocol on its own: test vectors another implementation can check itself against
//! (`tests/vectors/protocol-v1.json`), and a parser that never panics on any input.
use std::collections::BTreeMap;

use licentia::client::Container;
use licentia::domain::ContainerType;
use licentia::protocol::crypto::{key_id, AgreementKey, SigningKey};
use licentia::protocol::{self, Context, Entry, FirmContent, Kind, Op, SignedEntry, UpdateBody};
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

const VECTORS: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/vectors/protocol-v1.json"
);

fn key(byte: u8) -> [u8; 32] {
    [byte; 32]
}

/// Every message made from fixed keys, one-time key and nonce: Ed25519 is deterministic,
/// so the same inputs must give the same bytes in any implementation.
fn make_vectors() -> Value {
    let container = SigningKey::from_raw(&key(1)).unwrap();
    let container_enc = AgreementKey::from_raw(&key(2)).unwrap();
    let firm = SigningKey::from_raw(&key(3)).unwrap();
    let ephemeral = AgreementKey::from_raw(&key(4)).unwrap();
    let iv = [5u8; 12];
    let b64 = |b: &[u8]| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(b)
    };
    let mut request = Context {
        kind: "request".into(),
        v: 1,
        serial: "new".into(),
        container_type: ContainerType::Act,
        firm_code: 6000010,
        counter: 0,
        digest: FirmContent::default().digest(),
        sign_key: b64(&container.public()),
        enc_key: b64(&container_enc.public()),
        fingerprint: ["machine_id", "hostname", "mac"]
            .iter()
            .map(|n| protocol::Trait {
                name: n.to_string(),
                hash: licentia::client::hash_trait("00", n, "value"),
            })
            .collect(),
        known_keys: vec![key_id(&firm.public())],
        nonce: "00112233445566778899aabbccddeeff".into(),
        created_at: 1_795_000_000,
        update_id: None,
        units_used: vec![],
    };
    let request_text = protocol::write_context(&request, &container);
    let entry = Entry {
        license_id: 42,
        generation: 1,
        serial: "130-1234567890".into(),
        firm_code: 6000010,
        product_code: 1001,
        feature_map: 1,
        quantity: 0,
        activation_time: None,
        expiration_time: Some(1_900_000_000),
        usage_period_days: None,
        unit_counter: None,
        maintenance_period_days: None,
        text: "SampleNotePad".into(),
        user_data: String::new(),
        protected_data: String::new(),
        check_in_until: None,
    };
    let signed_entry = SignedEntry::sign(entry, &firm);
    let body = UpdateBody {
        kind: "update".into(),
        v: 1,
        update_id: 7,
        serial: "130-1234567890".into(),
        firm_code: 6000010,
        counter_from: 0,
        counter_to: 1,
        container_key: key_id(&container.public()),
        issued_at: 1_795_000_001,
        expires_at: 1_797_592_001,
        fulfils: request.nonce.clone(),
        keys: vec![],
        ops: vec![Op::Add {
            entry: signed_entry.clone(),
        }],
    };
    let update_text =
        protocol::write_update_with(&body, &firm, &container_enc.public(), &ephemeral, iv).unwrap();
    let mut after = FirmContent::default();
    after.apply(&body.ops).unwrap();
    request.kind = "receipt".into();
    request.serial = "130-1234567890".into();
    request.counter = 1;
    request.digest = after.digest();
    request.update_id = Some(7);
    request.known_keys = vec![key_id(&firm.public())];
    let receipt_text = protocol::write_context(&request, &container);
    json!({
        "about": "Licentia container protocol v1 test vectors. Keys are raw 32-byte values in hex. \
                  Canonical JSON: keys sorted, no whitespace, integers only. Signatures: Ed25519 over \
                  the canonical body. Updates: X25519(ephemeral, container enc key) -> HKDF-SHA256 \
                  (salt = ephemeral public || container public, info 'licentia update v1') -> \
                  AES-256-GCM with the canonical visible header (without ct) as AAD.",
        "keys": {
            "container_sign": hex::encode(key(1)),
            "container_enc": hex::encode(key(2)),
            "firm_sign": hex::encode(key(3)),
            "update_ephemeral": hex::encode(key(4)),
            "update_iv": hex::encode(iv),
        },
        "empty_digest": FirmContent::default().digest(),
        "request": request_text,
        "entry_signature": signed_entry.sig,
        "update_body": body,
        "update": update_text,
        "digest_after": after.digest(),
        "receipt": receipt_text,
    })
}

#[test]
fn test_vectors_are_reproduced_byte_for_byte() {
    let made = make_vectors();
    // The file as it was before this run: with REGENERATE_VECTORS the comparison below is
    // still against it, never against what this run just wrote.
    let before = std::fs::read_to_string(VECTORS).ok();
    if std::env::var("REGENERATE_VECTORS").is_ok() {
        let text = serde_json::to_string_pretty(&made).unwrap() + "\n";
        if before.as_deref() != Some(text.as_str()) {
            std::fs::create_dir_all(std::path::Path::new(VECTORS).parent().unwrap()).unwrap();
            std::fs::write(VECTORS, text).unwrap();
            panic!(
                "REGENERATE_VECTORS: {VECTORS} rewritten because the protocol's bytes changed \
                 (that breaks containers in the field); review the change, then run again \
                 without REGENERATE_VECTORS"
            );
        }
    }
    let stored: Value = serde_json::from_str(
        &before.unwrap_or_else(|| panic!("{VECTORS} is missing (REGENERATE_VECTORS=1 makes it)")),
    )
    .unwrap();
    assert_eq!(
        made, stored,
        "the protocol's bytes changed: that breaks containers in the field"
    );

    // And the stored messages read back to what they say.
    let req = protocol::read_context(stored["request"].as_str().unwrap(), Kind::Request).unwrap();
    assert_eq!(req.serial, "new");
    let rec = protocol::read_context(stored["receipt"].as_str().unwrap(), Kind::Receipt).unwrap();
    assert_eq!(rec.digest, stored["digest_after"].as_str().unwrap());
    let firm = SigningKey::from_raw(&key(3)).unwrap();
    let trusted: BTreeMap<String, Vec<u8>> = [(key_id(&firm.public()), firm.public())].into();
    let enc = AgreementKey::from_raw(&key(2)).unwrap();
    let (body, _) =
        protocol::read_update(stored["update"].as_str().unwrap(), &enc, &trusted).unwrap();
    assert_eq!(serde_json::to_value(&body).unwrap(), stored["update_body"]);
    // The wrong kind, a wrong key.
    assert!(protocol::read_context(stored["request"].as_str().unwrap(), Kind::Receipt).is_err());
    let other = AgreementKey::from_raw(&key(9)).unwrap();
    assert!(protocol::read_update(stored["update"].as_str().unwrap(), &other, &trusted).is_err());
    assert!(
        protocol::read_update(stored["update"].as_str().unwrap(), &enc, &BTreeMap::new()).is_err()
    );
}

fn rearmour(kind: Kind, json: &[u8]) -> String {
    protocol::armour(kind, json)
}

fn decode(text: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = text.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD
        .decode(body)
        .unwrap()
}

/// Thousands of damaged messages (bytes flipped, cut, repeated; JSON inside changed and
/// re-armoured; random bytes) through every parser and the runtime: each is refused or
/// accepted, none panics, and none of the damaged signed messages verifies.
#[test]
fn damaged_and_random_messages_never_panic_and_only_unchanged_content_verifies() {
    let v = make_vectors();
    let samples = [
        (Kind::Request, v["request"].as_str().unwrap().to_string()),
        (Kind::Update, v["update"].as_str().unwrap().to_string()),
        (Kind::Receipt, v["receipt"].as_str().unwrap().to_string()),
    ];
    let enc = AgreementKey::from_raw(&key(2)).unwrap();
    let firm = SigningKey::from_raw(&key(3)).unwrap();
    let trusted: BTreeMap<String, Vec<u8>> = [(key_id(&firm.public()), firm.public())].into();
    let mut container =
        Container::create(ContainerType::Dongle, Some("3-1000000".into()), &[], 0).unwrap();
    container.trust(
        6000010,
        "f",
        &[(key_id(&firm.public()), {
            use base64::Engine;
            base64::engine::general_purpose::STANDARD.encode(firm.public())
        })]
        .into(),
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261123);
    let mut accepted = 0;
    let (original_update, _) = protocol::read_update(&samples[1].1, &enc, &trusted).unwrap();
    for i in 0..6000 {
        let (kind, text) = &samples[i % 3];
        let candidate: String = match i % 4 {
            0 => {
                let mut b = text.clone().into_bytes();
                for _ in 0..rng.gen_range(1..4) {
                    let at = rng.gen_range(0..b.len());
                    b[at] = rng.gen();
                }
                String::from_utf8_lossy(&b).into_owned()
            }
            1 => text[..rng.gen_range(0..text.len())].to_string(),
            2 => {
                let mut json = decode(text);
                let at = rng.gen_range(0..json.len());
                match rng.gen_range(0..3) {
                    0 => json[at] = rng.gen_range(32..127),
                    1 => {
                        json.remove(at);
                    }
                    _ => json.insert(at, b"{[\"0:,}]"[rng.gen_range(0..8)]),
                }
                rearmour(*kind, &json)
            }
            _ => {
                let n = rng.gen_range(0..400);
                let bytes: Vec<u8> = (0..n).map(|_| rng.gen()).collect();
                if rng.gen() {
                    rearmour(*kind, &bytes)
                } else {
                    String::from_utf8_lossy(&bytes).into_owned()
                }
            }
        };
        if candidate == *text {
            continue;
        }
        let _ = protocol::dearmour(&candidate);
        let _ = protocol::read_update_header(&candidate);
        // Whatever survives the damage (base64 padding bits, whitespace) must read as the
        // very content that was signed.
        match kind {
            Kind::Update => {
                let _ = container.clone().apply(&candidate, 1_795_000_100);
                if let Ok((body, _)) = protocol::read_update(&candidate, &enc, &trusted) {
                    assert_eq!(body, original_update, "{candidate}");
                    accepted += 1;
                }
            }
            k => {
                if let Ok(ctx) = protocol::read_context(&candidate, *k) {
                    let original = protocol::read_context(text, *k).unwrap();
                    assert_eq!(ctx, original, "{candidate}");
                    accepted += 1;
                }
            }
        }
    }
    assert!(
        accepted < 300,
        "{accepted} of the damaged messages read as valid"
    );
}

/// The document is enough: `tests/protocol/verify.py` was written from `docs/protocol.md`
/// alone (Python's `cryptography`, none of our code). It checks the vectors, and an update
/// the running server made: it verifies the firm's signatures, opens the update with the
/// container's key and computes the digest the container's receipt then shows. One changed
/// character, or another container's key, fails.
#[test]
fn a_verifier_written_from_the_document_alone_checks_the_vectors_and_a_live_update() {
    use licentia::client::online::Gateway;
    use licentia::client::unix_now;

    use crate::activation::{new_act, FIRM};

    let python = std::env::var("TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/protocol/verify.py");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(&python)
            .arg(script)
            .args(args)
            .output()
            .unwrap_or_else(|e| {
                panic!("{python}: {e} (test.sh installs cryptography in its venv)")
            });
        let text = |b: &[u8]| String::from_utf8_lossy(b).to_string();
        (out.status.code(), text(&out.stdout), text(&out.stderr))
    };
    let (code, out, err) = run(&["vectors", VECTORS]);
    assert_eq!(code, Some(0), "{out}{err}");
    assert!(out.contains("checks passed"), "{out}");

    let app = crate::harness::TestApp::start();
    let gw = Gateway::new(&app.base);
    // One license of each kind of entry: with and without a check-in deadline.
    let (s, v) = app.admin(
        "POST",
        "/api/v1/items",
        Some(
            json!({"item_id": "CHK-V", "name": "Checks in", "kind": "license",
            "product_code": 4002, "options": {"check_in_days": 30}}),
        ),
    );
    assert_eq!(s, 201, "{v}");
    let (s, v) = app.admin(
        "POST",
        "/api/v1/orders",
        Some(crate::harness::order(
            "V-1",
            "C-V",
            &[("SNP-SINGLE", 1), ("CHK-V", 1)],
        )),
    );
    assert_eq!(s, 201, "{v}");
    let ticket = v["ticket"].as_str().unwrap().to_string();
    let ids: Vec<i64> = gw
        .ticket(&ticket)
        .unwrap()
        .licenses
        .iter()
        .map(|l| l.license_id)
        .collect();
    let mut c = new_act(&gw);
    let issued = gw
        .activate(&ticket, &ids, &c.request(FIRM, unix_now()).unwrap())
        .unwrap();
    let dir = std::env::temp_dir().join(format!("licentia-verify-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = |name: &str, text: &str| {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().to_string()
    };
    let update = file("update.lcu", &issued.update);
    let keys = file(
        "template.json",
        &serde_json::to_string(&gw.template(FIRM).unwrap()).unwrap(),
    );
    let container_key = |c: &Container| serde_json::to_value(c).unwrap()["enc_key"].clone();
    let enc = container_key(&c);
    let firm = FIRM.to_string();
    let verify = |update: &str, enc: &str| {
        run(&[
            "update",
            "--firm-keys",
            &keys,
            "--container-key",
            enc,
            "--serial",
            &issued.serial,
            "--firm-code",
            &firm,
            "--counter-from",
            "0",
            update,
        ])
    };
    let (code, out, err) = verify(&update, enc.as_str().unwrap());
    assert_eq!(code, Some(0), "{out}{err}");
    let body: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(body["serial"], issued.serial.as_str());
    let added: Vec<i64> = body["ops"]
        .as_array()
        .unwrap()
        .iter()
        .map(|op| op["entry"]["entry"]["license_id"].as_i64().unwrap())
        .collect();
    assert_eq!(added, ids, "{body}");
    let deadlines = body["ops"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|op| op["entry"]["entry"]["check_in_until"].is_i64())
        .count();
    assert_eq!(deadlines, 1, "{body}");
    // The digest it computes is the one the container shows after applying the update.
    let receipt = c.apply(&issued.update, unix_now()).unwrap().receipt;
    let shown = protocol::read_context(&receipt, Kind::Receipt)
        .unwrap()
        .digest;
    assert!(
        err.contains(&format!(
            "digest after applying to the empty content: {shown}"
        )),
        "{err}"
    );
    assert!(!gw.receipt(&receipt).unwrap().already_confirmed);

    // One character changed in the armoured text, or another container's key: refused.
    let mut bytes = issued.update.clone().into_bytes();
    let mid = (bytes.len() / 2..)
        .find(|i| bytes[*i].is_ascii_alphanumeric())
        .unwrap();
    bytes[mid] = if bytes[mid] == b'A' { b'B' } else { b'A' };
    let tampered = file("tampered.lcu", std::str::from_utf8(&bytes).unwrap());
    let (code, _, err) = verify(&tampered, enc.as_str().unwrap());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("FAIL "), "{err}");
    let other = container_key(&new_act(&gw));
    let (code, _, err) = verify(&update, other.as_str().unwrap());
    assert_eq!(code, Some(1), "{err}");
    assert!(err.starts_with("FAIL "), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
