#!/usr/bin/env python3
"""Independent verifier for the Licentia container protocol, version 1.

Written from docs/protocol.md alone (plus the test vectors it describes), without
reading the reference implementation. Section numbers below refer to that document.

Commands:

  verify.py vectors FILE
      Check every vector of tests/vectors/protocol-v1.json (section 16): canonical JSON,
      armour, all signatures, the sealed update (section 10), digests, the receipt.

  verify.py update --firm-keys KEYS.json --container-key B64 --serial SERIAL \
                   --firm-code N --counter-from N [--now UNIX] UPDATE_FILE
      Verify an armoured update made by a server for one container (sections 10.6, 11).
      KEYS.json is a license template (section 6.1) or just its `keys` object. On success
      the update body is printed as one line of canonical JSON on stdout; for counter_from 0
      the operations are also applied to the (necessarily empty) firm content and the
      resulting digest, which the receipt will show, is noted on stderr. --now (Unix time)
      replaces the current time in the expiry check.

Every failure prints `FAIL <what>: <why>` on stderr and exits 1.

Needs Python 3.11+ and the `cryptography` package.
"""
import argparse
import base64
import binascii
import hashlib
import hmac
import json
import re
import sys
import time

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

I64 = (-(2**63), 2**63 - 1)
U64 = (0, 2**64 - 1)
U32 = (0, 2**32 - 1)
I32 = (-(2**31), 2**31 - 1)
MAX_ARMOUR = 524288                      # section 3.4
MAX_DEPTH = 16
MAX_OPS = 1000
HKDF_INFO = b"licentia update v1"
KINDS = ("request", "update", "receipt")
WS = " \t\r\n\x0b\x0c"                   # "white space" of section 5, taken as ASCII


class Fail(Exception):
    def __init__(self, what, why):
        super().__init__(f"{what}: {why}")
        self.what, self.why = what, why


def need(cond, what, why):
    if not cond:
        raise Fail(what, why)


# ---------------------------------------------------------------- encodings (3, 4)

def b64d(s, what, length=None, min_len=None):
    """Strict base64 (section 3.1): standard alphabet, correct padding, no stray bits."""
    need(isinstance(s, str), what, "not a string")
    try:
        raw = base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError) as e:
        raise Fail(what, f"bad base64 ({e})")
    need(base64.b64encode(raw).decode() == s, what, "non-canonical base64")
    need(length is None or len(raw) == length, what, f"{len(raw)} bytes, expected {length}")
    need(min_len is None or len(raw) >= min_len, what, f"{len(raw)} bytes, expected >= {min_len}")
    return raw


def b64e(raw):
    return base64.b64encode(raw).decode()


def canonical(value):
    """Section 4.1; the document states this json.dumps call is exact for integer-only values."""
    try:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"), sort_keys=True,
                          allow_nan=False).encode("utf-8")
    except (ValueError, TypeError, UnicodeEncodeError) as e:
        raise Fail("canonical JSON", str(e))


def key_id(public):
    return hashlib.sha256(public).hexdigest()[:16]     # section 3.3


def _int(text):
    n = int(text)
    if text == "-0" or not I64[0] <= n <= U64[1]:
        raise ValueError(f"integer {text} refused")
    return n


def _no_float(text):
    raise ValueError(f"number {text} is not an integer")


def parse_json(data, what, check_depth=True):
    """Section 4.2: integers only (no fraction/exponent/-0, 64-bit range), depth <= 16."""
    try:
        value = json.loads(data.decode("utf-8"), parse_int=_int, parse_float=_no_float,
                           parse_constant=_no_float)
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise Fail(what, f"bad JSON ({str(e)[:100]})")

    def depth(v, d):
        need(d <= MAX_DEPTH, what, f"nesting deeper than {MAX_DEPTH}")
        for c in (v.values() if isinstance(v, dict) else v if isinstance(v, list) else ()):
            depth(c, d + 1)
    if check_depth:
        depth(value, 0)
    need(isinstance(value, dict), what, "top level is not an object")
    return value


# ---------------------------------------------------------------- armour (5)

def armour(kind, data):
    b = b64e(data)
    lines = [b[i:i + 64] for i in range(0, len(b), 64)]
    tag = f"LICENTIA {kind.upper()}-----"
    return "\n".join([f"-----BEGIN {tag}", *lines, f"-----END {tag}"]) + "\n"


def dearmour(text, expect):
    """Returns (json bytes, parsed object). `text` is bytes or str."""
    if isinstance(text, str):
        text = text.encode("utf-8")
    need(len(text) <= MAX_ARMOUR, "armour", f"longer than {MAX_ARMOUR} bytes")
    try:
        text = text.decode("utf-8")
    except UnicodeDecodeError:
        raise Fail("armour", "not UTF-8")
    lines = [line.strip(WS) for line in text.strip(WS).split("\n")]
    kind = next((k for k in KINDS if lines[0] == f"-----BEGIN LICENTIA {k.upper()}-----"), None)
    need(kind is not None, "armour", "no header line")
    need(kind == expect, "armour", f"kind is {kind}, expected {expect}")
    footer = f"-----END LICENTIA {kind.upper()}-----"
    need(footer in lines[1:], "armour", "no footer line")
    end = lines.index(footer, 1)
    need(end == len(lines) - 1, "armour", "lines after the footer")
    data = b64d("".join(lines[1:end]), "armour body")
    obj = parse_json(data, f"{kind} JSON")
    need(obj.get("kind") == kind, f"{kind} JSON", "kind member does not match the armour")
    return data, obj


# ---------------------------------------------------------------- field checks

def integer(lo, hi):
    def f(v, what):
        need(type(v) is int and lo <= v <= hi, what, f"not an integer in [{lo}, {hi}]")
        return v
    return f


def nullable(check):
    return lambda v, what: None if v is None else check(v, what)


def string(v, what):
    need(isinstance(v, str), what, "not a string")
    return v


def hexstr(n):
    def f(v, what):
        need(isinstance(v, str) and re.fullmatch(f"[0-9a-f]{{{n}}}", v), what, f"not {n} lowercase hex")
        return v
    return f


def b64bytes(n):
    return lambda v, what: b64d(v, what, n)


def const(c):
    def f(v, what):
        need(v == c and type(v) is type(c), what, f"must be {c!r}")
        return v
    return f


def obj(v, what, spec, optional=None):
    """Exactly the keys of `spec` (those in `optional` may be absent: default used)."""
    optional = optional or {}
    need(isinstance(v, dict), what, "not an object")
    extra = set(v) - set(spec)
    need(not extra, what, f"unknown member(s) {sorted(extra)}")
    for k, check in spec.items():
        if k not in v:
            need(k in optional, what, f"missing member {k!r}")
            continue
        check(v[k], f"{what}.{k}")
    return {k: v.get(k, optional.get(k)) for k in spec}


def array(item, max_len=None):
    def f(v, what):
        need(isinstance(v, list), what, "not an array")
        need(max_len is None or len(v) <= max_len, what, f"more than {max_len} elements")
        return [item(x, f"{what}[{i}]") for i, x in enumerate(v)]
    return f


def x25519_public(v, what):
    raw = b64d(v, what, 32)
    try:   # a low-order point gives an all-zero agreement, which cryptography refuses
        X25519PrivateKey.generate().exchange(X25519PublicKey.from_public_bytes(raw))
    except ValueError:
        raise Fail(what, "low-order X25519 point")
    return raw


def serial_rule(v, what):
    need(isinstance(v, str) and (v == "new" or re.fullmatch(r"[0-9]{1,4}-[0-9]{1,12}", v)),
         what, "bad serial")
    return v


FINGERPRINT = lambda v, what: obj(v, what, {
    "hash": hexstr(64),
    "name": lambda n, w: need(isinstance(n, str) and 1 <= len(n.encode()) <= 32, w, "bad name")})

CONTEXT = {  # section 7.2
    "kind": string, "v": const(1), "serial": serial_rule,
    "container_type": lambda v, w: need(v in ("act", "dongle", "cloud"), w, "bad container type"),
    "firm_code": integer(1, U32[1]), "counter": integer(*U64), "digest": hexstr(64),
    "sign_key": b64bytes(32), "enc_key": x25519_public,
    "fingerprint": array(FINGERPRINT, 16), "known_keys": array(hexstr(16), 256),
    "nonce": hexstr(32), "created_at": integer(*I64), "update_id": nullable(integer(*I64)),
    "units_used": lambda v, w: units_used(v, w),
}


def units_used(v, what):
    """Section 7.2: by license id, ascending, each once; at most 1000."""
    array(lambda u, w: obj(u, w, {"license_id": integer(*I64), "used": integer(*U64)}),
          1000)(v, what)
    ids = [u["license_id"] for u in v]
    need(ids == sorted(set(ids)), what, "not by license id, ascending, each once")

ENTRY = {  # section 8.1
    "license_id": integer(*I64), "generation": integer(*I32), "serial": string,
    "firm_code": integer(*I64), "product_code": integer(*I64), "feature_map": integer(*U32),
    "quantity": integer(*U32), "activation_time": nullable(integer(*I64)),
    "expiration_time": nullable(integer(*I64)), "usage_period_days": nullable(integer(*U32)),
    "unit_counter": nullable(integer(*U32)), "maintenance_period_days": nullable(integer(*U32)),
    "text": string, "user_data": string, "protected_data": string,
}
ENTRY_NULLABLE = dict.fromkeys(["activation_time", "expiration_time", "usage_period_days",
                                "unit_counter", "maintenance_period_days"])


ENTRY_WHEN_SET = {"check_in_until": integer(*I64)}  # present only when it applies (8.1)


def entry(e, what):
    """The 15 members (absent nullable ones as null), and those written only when set."""
    need(isinstance(e, dict), what, "not an object")
    out = obj({k: v for k, v in e.items() if k not in ENTRY_WHEN_SET}, what, ENTRY,
              ENTRY_NULLABLE)
    for k, check in ENTRY_WHEN_SET.items():
        if k in e:
            check(e[k], f"{what}.{k}")
            out[k] = e[k]
    return out


def signed_entry(v, what):
    se = obj(v, what, {"entry": entry, "key_id": string, "sig": b64bytes(64)})
    se["entry"] = entry(se["entry"], f"{what}.entry")
    return se


def operation(v, what):  # section 8.3
    need(isinstance(v, dict), what, "not an object")
    op = v.get("op")
    if op in ("add", "change"):
        o = obj(v, what, {"entry": signed_entry, "op": string})
        o["entry"] = signed_entry(v["entry"], f"{what}.entry")
        return o
    if op == "delete":
        return obj(v, what, {"license_id": integer(*I64), "op": string})
    if op == "lock":                        # the lock item's product code, if any
        return obj(v, what, {"op": string, "product_code": integer(*I64)},
                   optional={"product_code": None})
    need(op == "unlock", what, f"unknown op {op!r}")
    return {"op": op}                       # other members ignored (section 8.3)


ENDORSEMENT = {"firm_code": integer(*I64), "key_id": string, "public_key": b64bytes(32),
               "endorsed_by": string, "sig": b64bytes(64)}

UPDATE_BODY = {  # section 10.5
    "kind": const("update"), "v": const(1), "update_id": integer(*I64), "serial": string,
    "firm_code": integer(*I64), "counter_from": integer(*U64), "counter_to": integer(*U64),
    "container_key": string, "issued_at": integer(*I64), "expires_at": integer(*I64),
    "fulfils": string, "keys": array(lambda e, w: obj(e, w, ENDORSEMENT)),
    "ops": array(operation, MAX_OPS),
}

SEALED = {  # section 10.2
    "kind": const("update"), "v": const(1), "serial": string, "firm_code": integer(*I64),
    "counter": integer(*U64), "eph": b64bytes(32), "iv": b64bytes(12),
    "ct": lambda v, w: b64d(v, w, min_len=16),
}


# ---------------------------------------------------------------- crypto

def ed_verify(public, sig, data, what):
    try:
        Ed25519PublicKey.from_public_bytes(public).verify(sig, data)
    except (InvalidSignature, ValueError):
        raise Fail(what, "signature does not verify")


def content_key(shared, eph_pub, own_pub):
    """Section 10.3: HKDF-SHA256, one block. Returns (PRK, key)."""
    prk = hmac.new(eph_pub + own_pub, shared, hashlib.sha256).digest()
    return prk, hmac.new(prk, HKDF_INFO + b"\x01", hashlib.sha256).digest()


def read_context(text, kind):
    """Section 7.3. Returns (json bytes, envelope, body)."""
    data, env = dearmour(text, kind)
    obj(env, kind, {"body": lambda v, w: None, "kind": string, "sig": b64bytes(64)})
    body = obj(env["body"], f"{kind}.body", CONTEXT,
               {"fingerprint": [], "known_keys": [], "update_id": None, "units_used": []})
    need(body["kind"] == kind, f"{kind}.body.kind", "does not match the armour")
    if kind == "request":
        need(body["update_id"] is None, f"{kind}.body.update_id", "must be null in a request")
    else:
        need(type(body["update_id"]) is int, f"{kind}.body.update_id", "must be an integer")
    ed_verify(b64d(body["sign_key"], "sign_key", 32), b64d(env["sig"], "sig", 64),
              canonical(env["body"]), f"{kind} signature")
    return data, env, body


def read_update(text, enc_private, trusted):
    """Section 10.6. `trusted`: key id -> 32-byte Ed25519 public key.
    Returns a dict with the sealed update, plaintext, signed update, body and known keys."""
    data, sealed = dearmour(text, "update")
    obj(sealed, "update", SEALED)
    eph, iv = b64d(sealed["eph"], "eph", 32), b64d(sealed["iv"], "iv", 12)
    ct = b64d(sealed["ct"], "ct", min_len=16)
    aad = canonical({k: v for k, v in sealed.items() if k != "ct"})
    own_pub = enc_private.public_key().public_bytes_raw()
    try:
        shared = enc_private.exchange(X25519PublicKey.from_public_bytes(eph))
    except ValueError:
        raise Fail("update eph", "all-zero X25519 agreement")
    prk, key = content_key(shared, eph, own_pub)
    try:
        plain = AESGCM(key).decrypt(iv, ct, aad)
    except InvalidTag:
        raise Fail("update decryption", "AES-GCM tag does not verify (wrong key or altered message)")
    signed = parse_json(plain, "signed update", check_depth=False)
    obj(signed, "signed update", {"body": lambda v, w: None, "key_id": string, "sig": b64bytes(64)})
    body = signed["body"]
    obj(body, "update body", UPDATE_BODY)
    known = dict(trusted)
    for i, e in enumerate(body["keys"]):                                 # step 5
        w = f"update body.keys[{i}]"
        need(e["firm_code"] == body["firm_code"], w, "firm_code differs from the body's")
        need(e["endorsed_by"] in known, w, f"endorsed_by {e['endorsed_by']} is not a known key")
        pub = b64d(e["public_key"], w, 32)
        need(key_id(pub) == e["key_id"], w, "key_id is not the key id of public_key")
        ed_verify(known[e["endorsed_by"]], b64d(e["sig"], w, 64), canonical(
            {k: e[k] for k in ("firm_code", "key_id", "public_key")}), f"{w} signature")
        known[e["key_id"]] = pub
    need(signed["key_id"] in known, "update firm key", f"key id {signed['key_id']} is not trusted")  # 6
    ed_verify(known[signed["key_id"]], b64d(signed["sig"], "sig", 64), canonical(body),
              "update firm signature")
    for k, sk in (("serial", "serial"), ("firm_code", "firm_code"), ("counter_from", "counter")):  # 7
        need(body[k] == sealed[sk], f"update body.{k}", f"differs from the sealed {sk}")
    need(body["counter_to"] == body["counter_from"] + 1, "update body.counter_to",    # 8
         "is not counter_from + 1")
    for i, op in enumerate(body["ops"]):                                 # step 9
        if op["op"] in ("add", "change"):
            w = f"update body.ops[{i}].entry"
            need(op["entry"]["key_id"] in known, w, f"key id {op['entry']['key_id']} is not trusted")
            need(op["entry"]["entry"]["serial"] == body["serial"], w, "serial differs from the body's")
            need(op["entry"]["entry"]["firm_code"] == body["firm_code"], w,
                 "firm_code differs from the body's")
    return dict(data=data, sealed=sealed, aad=aad, shared=shared, prk=prk, key=key, ct=ct,
                plain=plain, signed=signed, body=body, known=known)


def verify_entries(body, known):
    """Section 8.2 / 12 step 6.1: every entry's signature with the key it names."""
    for i, op in enumerate(body["ops"]):
        if op.get("op") in ("add", "change"):
            se = signed_entry(op["entry"], f"ops[{i}].entry")
            ed_verify(known[se["key_id"]], b64d(se["sig"], "sig", 64), canonical(se["entry"]),
                      f"ops[{i}] entry signature (license {se['entry']['license_id']})")


def apply_ops(content, ops):
    """Section 8.3 on ({license_id: signed entry}, locked, lock_product); returns a new
    (entries, locked, lock_product)."""
    entries, locked, lock_product = dict(content[0]), content[1], content[2]
    for i, raw in enumerate(ops):
        op = operation(raw, f"ops[{i}]")
        if op["op"] in ("add", "change"):
            lid = op["entry"]["entry"]["license_id"]
            need((lid in entries) == (op["op"] == "change"), f"ops[{i}] {op['op']}",
                 f"license {lid} {'not ' if op['op'] == 'change' else 'already '}held")
            entries[lid] = op["entry"]
        elif op["op"] == "delete":
            need(op["license_id"] in entries, f"ops[{i}] delete", f"license {op['license_id']} not held")
            del entries[op["license_id"]]
        else:
            locked = op["op"] == "lock"
            lock_product = op.get("product_code")
    return entries, locked, lock_product


def digest(entries, locked, lock_product=None):
    """Section 9.2 (the lock item's product code is not part of it)."""
    plain = [entries[k]["entry"] for k in sorted(entries)]
    return hashlib.sha256(canonical({"entries": plain, "locked": locked})).hexdigest()


# ---------------------------------------------------------------- command: vectors

def cmd_vectors(path):
    count = 0

    def ok(what, cond=True, why="mismatch"):
        nonlocal count
        need(cond, what, why)
        count += 1
        print(f"ok  {what}")

    def refused(what, fn):
        try:
            fn()
        except Fail:
            return ok(what)
        raise Fail(what, "was accepted")

    with open(path, "rb") as f:
        vec = json.loads(f.read())
    k = {n: bytes.fromhex(vec["keys"][n]) for n in
         ("container_sign", "container_enc", "firm_sign", "update_ephemeral", "update_iv")}
    c_sign = Ed25519PrivateKey.from_private_bytes(k["container_sign"])
    f_sign = Ed25519PrivateKey.from_private_bytes(k["firm_sign"])
    c_enc = X25519PrivateKey.from_private_bytes(k["container_enc"])
    e_enc = X25519PrivateKey.from_private_bytes(k["update_ephemeral"])
    c_pub, f_pub = c_sign.public_key().public_bytes_raw(), f_sign.public_key().public_bytes_raw()
    ce_pub, e_pub = c_enc.public_key().public_bytes_raw(), e_enc.public_key().public_bytes_raw()
    ok("key sizes", all(len(k[n]) == 32 for n in list(k)[:4]) and len(k["update_iv"]) == 12)

    # Step 1 (values from section 16.2) and step 2.
    ok("container sign key = doc 16.2 step 1", b64e(c_pub) == "iojj3XQJ8ZX9UtstPLpdcspnCb8dlBIb83SIAbQPb1w=")
    ok("firm key = doc 16.2 step 1", b64e(f_pub) == "7UkoxijRwsbq6QM4kFmVYSlZJzpcY/k2NsFGFKyHN9E=")
    ok("container enc key = doc 16.2 step 1", b64e(ce_pub) == "zo060cy2M+x7cMF4FKXHbs0CloUFDTRHRboFhw5YfVk=")
    ok("ephemeral key = doc 16.2 step 1", b64e(e_pub) == "rAGyIJ6GNU+4UyN7XeD0+rE8f8v0M6YcAZNpYX/s8Qs=")
    ok("key ids", key_id(c_pub) == "34750f98bd59fcfc" and key_id(f_pub) == "b62e867fa2f33afe")
    empty = canonical({"entries": [], "locked": False})
    ok("empty content canonical bytes", empty == b'{"entries":[],"locked":false}')
    ok("empty_digest", digest({}, False) == vec["empty_digest"] ==
       "e4fadf32e70ad6b126e0e53b58766110da870c479bbe9c7b4be549acafffac89")

    # Step 3: the request.
    data, env, req = read_context(vec["request"], "request")
    ok("request dearmour + parse + signature (7.3)")
    ok("request JSON is canonical (821 bytes)", data == canonical(env) and len(data) == 821)
    ok("request re-armours to the same text", armour("request", data) == vec["request"])
    ok("request sig reproduces (deterministic)", b64e(c_sign.sign(canonical(env["body"]))) == env["sig"]
       == "ALMDZJvNC4JbnYvN39YZ0ROtiiEsalyjXUzVJv3gl/SvPm5Wl3oxk5pyB5orfZbPsQki7Dh36oju9s8J/dJmAA==")
    ok("request fields (16.1)", req["sign_key"] == b64e(c_pub) and req["enc_key"] == b64e(ce_pub)
       and req["serial"] == "new" and req["container_type"] == "act" and req["firm_code"] == 6000010
       and req["counter"] == 0 and req["digest"] == vec["empty_digest"]
       and req["known_keys"] == [key_id(f_pub)] and req["update_id"] is None
       and req["nonce"] == "00112233445566778899aabbccddeeff")
    trait = lambda salt, name, value: hashlib.sha256(b"\x00".join(
        x.encode() for x in ("licentia-trait-v1", salt, name, value))).hexdigest()
    ok("fingerprint hashes (section 13, salt 00)", req["fingerprint"] ==
       [{"hash": trait("00", n, "value"), "name": n} for n in ("machine_id", "hostname", "mac")]
       and req["fingerprint"][0]["hash"] == "b468256800012f4ef730d32323b49e85feebf61c5c110d695c322ad34762cb97")
    refused("request read as a receipt is refused", lambda: read_context(vec["request"], "receipt"))
    refused("request read as an update is refused", lambda: dearmour(vec["request"], "update"))

    # Step 4: the entry signature.
    body_v = vec["update_body"]
    se = signed_entry(body_v["ops"][0]["entry"], "update_body.ops[0].entry")
    ent = canonical(se["entry"])
    ok("entry canonical bytes = doc 16.2 step 4", ent == (
        b'{"activation_time":null,"expiration_time":1900000000,"feature_map":1,"firm_code":6000010,'
        b'"generation":1,"license_id":42,"maintenance_period_days":null,"product_code":1001,'
        b'"protected_data":"","quantity":0,"serial":"130-1234567890","text":"SampleNotePad",'
        b'"unit_counter":null,"usage_period_days":null,"user_data":""}'))
    ok("entry_signature reproduces", b64e(f_sign.sign(ent)) == vec["entry_signature"] == se["sig"])
    ed_verify(f_pub, b64d(vec["entry_signature"], "entry_signature", 64), ent, "entry signature")
    ok("entry_signature verifies with the firm key", se["key_id"] == key_id(f_pub))

    # Steps 5-8: the sealed update.
    u = read_update(vec["update"], c_enc, {key_id(f_pub): f_pub})
    ok("update dearmour + decrypt + firm signature + 10.6 checks")
    ok("update JSON is canonical (1342 bytes)", u["data"] == canonical(u["sealed"]) and len(u["data"]) == 1342)
    ok("update re-armours to the same text", armour("update", u["data"]) == vec["update"])
    s = u["sealed"]
    ok("update visible fields (16.2 step 5)", s["counter"] == 0 and s["firm_code"] == 6000010
       and s["serial"] == "130-1234567890" and s["eph"] == b64e(e_pub) and s["iv"] == b64e(k["update_iv"]))
    ok("AAD (158 bytes)", len(u["aad"]) == 158 and u["aad"] == (
        b'{"counter":0,"eph":"rAGyIJ6GNU+4UyN7XeD0+rE8f8v0M6YcAZNpYX/s8Qs=","firm_code":6000010,'
        b'"iv":"BQUFBQUFBQUFBQUF","kind":"update","serial":"130-1234567890","v":1}'))
    ok("shared secret, both sides (16.2 step 6)", u["shared"] == e_enc.exchange(c_enc.public_key())
       == bytes.fromhex("09bb974ce3799959096660bdece3bb89ca106e6df31c2f701b7b8b9977047c34"))
    ok("HKDF PRK and key", u["prk"].hex() == "5736e2fe5b45b51087cebf46d21e111f5375684f610d6d4f40144bb05cf64596"
       and u["key"].hex() == "8730baff83e00efabfdcfc33cb1e9817cbd204502373bb4099e03621c92e8db9")
    ok("HKDF key = cryptography's HKDF (RFC 5869)", u["key"] == HKDF(
        SHA256(), 32, salt=e_pub + ce_pub, info=HKDF_INFO).derive(u["shared"]))
    ok("ct 880 bytes, tag (16.2 step 7)", len(u["ct"]) == 880 and
       u["ct"][-16:].hex() == "542e14da65eba7f7c3cff7b8224dc92d")
    ok("plaintext canonical (864 bytes)", u["plain"] == canonical(u["signed"]) and len(u["plain"]) == 864)
    ok("re-encryption reproduces ct", AESGCM(u["key"]).encrypt(k["update_iv"], u["plain"], u["aad"]) == u["ct"])
    ok("decrypted body = update_body", u["body"] == body_v and len(canonical(u["body"])) == 730)
    ok("firm signature reproduces", u["signed"]["key_id"] == key_id(f_pub) and
       b64e(f_sign.sign(canonical(u["body"]))) == u["signed"]["sig"] ==
       "/5+fohNbSUTrJ7M6M7Fczo43YT1bYjbkm0+6UoBO1a+M+kfWb6CnwHiF5QNc9Y9JWUP1qhC0fYxJj4zi7JdFCg==")
    verify_entries(u["body"], u["known"])
    ok("every entry signature in the update verifies")
    b = u["body"]
    ok("update body: container_key, counters, expiry (16.2 step 8)", b["container_key"] == key_id(c_pub)
       and b["counter_from"] == 0 and b["counter_to"] == 1 and b["keys"] == []
       and b["issued_at"] == 1795000001 and b["expires_at"] == 1797592001 == b["issued_at"] + 30 * 86400
       and b["fulfils"] == req["nonce"])
    refused("update with another X25519 key fails to decrypt",
            lambda: read_update(vec["update"], X25519PrivateKey.from_private_bytes(bytes([9]) * 32),
                                {key_id(f_pub): f_pub}))
    refused("update with no trusted firm key is refused", lambda: read_update(vec["update"], c_enc, {}))
    refused("update read as a request is refused", lambda: read_context(vec["update"], "request"))

    # Step 9: digest after.
    entries, locked, lock_product = apply_ops(({}, False, None), b["ops"])
    ok("digest_after", digest(entries, locked, lock_product) == vec["digest_after"] ==
       "2b59496b06b39d542e2e944a723c3c48efd1704f7139e295f818151c9b6da603")

    # Step 10: the receipt.
    data, env, rec = read_context(vec["receipt"], "receipt")
    ok("receipt dearmour + parse + signature (7.3)")
    ok("receipt JSON is canonical (829 bytes)", data == canonical(env) and len(data) == 829)
    ok("receipt re-armours to the same text", armour("receipt", data) == vec["receipt"])
    ok("receipt sig reproduces", b64e(c_sign.sign(canonical(env["body"]))) == env["sig"] ==
       "b6jRZhXFQFWFdhVuBYy2yF9dJ4TSB6USu0mcD/OwLxglEXR95LRx+Jxh5wegMC/NzV/eFR1esu4cPzMMK00XAg==")
    ok("receipt fields (16.1, 11 step 10)", rec["serial"] == b["serial"] and rec["counter"] == b["counter_to"]
       and rec["digest"] == vec["digest_after"] and rec["update_id"] == b["update_id"] == 7
       and all(rec[f] == req[f] for f in ("sign_key", "enc_key", "fingerprint", "known_keys",
                                         "container_type", "firm_code", "nonce", "created_at")))
    refused("receipt read as a request is refused", lambda: read_context(vec["receipt"], "request"))
    print(f"{count} checks passed")


# ---------------------------------------------------------------- command: update

def load_firm_keys(path, firm_code):
    with open(path, "rb") as f:
        doc = parse_json(f.read(), "KEYS.json")
    if isinstance(doc.get("keys"), dict):          # a whole template (section 6.1)
        if "firm_code" in doc:
            need(doc["firm_code"] == firm_code, "KEYS.json", "template is for another firm code")
        doc = doc["keys"]
    keys = {}
    for kid, pub in doc.items():
        raw = b64d(pub, f"KEYS.json[{kid}]", 32)
        need(key_id(raw) == kid, f"KEYS.json[{kid}]", f"key id of this key is {key_id(raw)}")
        keys[kid] = raw
    need(keys, "KEYS.json", "no firm keys")
    return keys


def cmd_update(a):
    trusted = load_firm_keys(a.firm_keys, a.firm_code)
    enc = X25519PrivateKey.from_private_bytes(b64d(a.container_key, "--container-key", 32))
    with open(a.update_file, "rb") as f:
        text = f.read()
    _, sealed = dearmour(text, "update")                               # section 11 step 1
    obj(sealed, "update", SEALED)
    need(a.serial == "new" or sealed["serial"] == a.serial, "wrong_container",   # step 2
         f"update is for serial {sealed['serial']}")
    need(sealed["firm_code"] == a.firm_code, "untrusted_firm",                  # step 3
         f"update is for firm code {sealed['firm_code']}")
    need(sealed["counter"] == a.counter_from, "wrong_counter",                  # step 4
         f"update is for counter {sealed['counter']}")
    u = read_update(text, enc, trusted)                                         # step 5
    body = u["body"]
    now = int(time.time()) if a.now is None else a.now
    need(body["expires_at"] >= now, "update_expired", f"expired at {body['expires_at']}")  # step 7
    # Step 6 needs the container's Ed25519 public key, which is not an input: format only.
    need(re.fullmatch("[0-9a-f]{16}", body["container_key"]), "update body.container_key",
         "not a key id")
    verify_entries(body, u["known"])                                            # sections 8.2, 12
    if body["counter_from"] == 0:     # content at counter 0 is empty: ops must apply (step 8)
        after = apply_ops(({}, False, None), body["ops"])
        print(f"note: digest after applying to the empty content: {digest(*after)}",
              file=sys.stderr)
    sys.stdout.write(canonical(body).decode("utf-8") + "\n")


class Args(argparse.ArgumentParser):
    def error(self, message):               # report bad arguments as FAIL, exit 1
        raise Fail("arguments", message)


def main(argv=None):
    p = Args(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True, parser_class=Args)
    v = sub.add_parser("vectors")
    v.add_argument("file")
    u = sub.add_parser("update")
    u.add_argument("--firm-keys", required=True)
    u.add_argument("--container-key", required=True)
    u.add_argument("--serial", required=True)
    u.add_argument("--firm-code", required=True, type=int)
    u.add_argument("--counter-from", required=True, type=int)
    u.add_argument("--now", type=int, help="Unix time for the expiry check (default: current time)")
    u.add_argument("update_file")
    try:
        a = p.parse_args(argv)
        cmd_vectors(a.file) if a.cmd == "vectors" else cmd_update(a)
    except Fail as e:
        print(f"FAIL {e.what}: {e.why}", file=sys.stderr)
        return 1
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError, RecursionError) as e:
        print(f"FAIL input: {type(e).__name__}: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
