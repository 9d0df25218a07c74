#!/usr/bin/env python3
"""Writes the seed corpus of both targets: request bodies of the recorded scenarios, and the
inputs of the hardening catalogue (forged and oversized ids, odd deadlines and content types,
deep and huge JSON). Run from anywhere; rewrites corpus/*/seed-*."""
import glob, json, os, pathlib

here = pathlib.Path(__file__).resolve().parent
root = here.parent

def write(target, name, data):
    d = here / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / f"seed-{name}").write_bytes(data)

def request(post, headers, body):
    head = b"".join(k + b": " + v + b"\n" for k, v in headers)
    return bytes([0 if post else 1]) + head + b"\n" + body

JSON = (b"t", b"application/json; charset=utf-8")
bodies = []
for path in sorted(glob.glob(str(root / "scenarios/recorded/*.json"))):
    scenario = json.load(open(path))
    def walk(call):
        yield call
        for child in call.get("calls", []):
            yield from walk(child)
    for call in walk(scenario["root"]):
        if "body" in call:
            bodies.append((pathlib.Path(path).stem, json.dumps(call["body"]).encode()))
for i, (name, body) in enumerate(bodies):
    write("decode_request", f"scenario-{name}-{i}", request(True, [JSON, (b"i", b"0123456789abcdef0123456789abcdef"), (b"c", b"test_client")], body))

catalogue = {
    "forged-id": request(True, [JSON, (b"i", b'x code=S-FAKE error="forged"')], b'{"param":"x"}'),
    "long-id": request(True, [JSON, (b"i", b"a" * 300)], b'{"param":"x"}'),
    "uuid-id": request(True, [JSON, (b"i", b"6f1c2a9e-3b8d-4c55-9a0e-2f4b7d8c1e90")], b"{}"),
    "caller-space": request(True, [JSON, (b"c", b"svc1 admin")], b"{}"),
    "deadline-negative": request(True, [JSON, (b"d", b"-1")], b"{}"),
    "deadline-huge": request(True, [JSON, (b"d", b"18446744073709551616")], b"{}"),
    "no-content-type": request(True, [], b'{"param":"x"}'),
    "latin1": request(True, [(b"t", b"application/json; charset=latin1")], b"{}"),
    "quoted-charset": request(True, [(b"t", b'Application/JSON; Charset="UTF-8"')], b"{}"),
    "bad-mime": request(True, [(b"t", b"not a type")], b"{}"),
    "deep": request(True, [JSON], b'{"next":' * 140 + b"{}" + b"}" * 140),
    "deep-array": request(True, [JSON], b"[" * 200 + b"]" * 200),
    "nested-ok": request(True, [JSON], b'{"param":"a","count":3,"ratio":1.5,"flags":[true],"tags":{"k":"v"},"next":{"param":"b"}}'),
    "null-fields": request(True, [JSON], b'{"param":null,"count":null,"next":null}'),
    "wrong-types": request(True, [JSON], b'{"param":42,"count":-1,"ratio":"x"}'),
    "escapes": request(True, [JSON], b'{"param":"\\ud800\\u0000\\"\\\\"}'),
    "truncated": request(True, [JSON], b'{"param":'),
    "get-empty": request(False, [], b""),
    "get-with-body": request(False, [], b"{}"),
}
for name, data in catalogue.items():
    write("decode_request", name, data)

def error(status, ct, body):
    return status.to_bytes(2, "little") + bytes([ct]) + body

errors = {
    "coded": error(4, 0, b'{"code":"C-NOT-FOUND","msg":"svc3 failure :: no such thing"}'),
    "uncoded": error(100, 1, b'{"msg":"boom"}'),
    "not-error-json": error(0, 0, b'{"error":"x"}'),
    "html": error(102, 4, b"<html>oops</html>"),
    "empty-503": error(103, 5, b""),
    "latin1": error(100, 3, b'{"code":"S-X","msg":"y"}'),
    "custom-ct": error(100, 255, b"application/problem+json\n{\"code\":\"C-X\"}"),
    "numbers": error(100, 0, b'{"code":1,"msg":[1,2]}'),
    "deep": error(100, 0, b"[" * 200 + b"]" * 200),
    "refusal": error(103, 0, b'{"code":"S-UNAVAILABLE","msg":"the server is shutting down"}'),
}
for name, data in errors.items():
    write("error_body", name, data)
print(f"{len(bodies) + len(catalogue)} decode_request seeds, {len(errors)} error_body seeds")
