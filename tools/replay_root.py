#!/usr/bin/env python3
"""Replays the root request of a nano scenario file against a live server over HTTP.

Usage: replay_root.py SCENARIO_FILE OPENAPI_FILE BASE_URL

The scenario names its root request by wire name (e.g. "svc2.GetReq"); the OpenAPI document
exported from the services' API declarations maps that name to a method and path through each
operation's "x-nano-wire-name". The request is sent with the scenario's caller as
X-Nano-Client-Name, and with the scenario's body only when the operation has a requestBody. The
answer is turned into an outcome ({"response": ...} or {"error": {"code", "message"}}) and
compared with the recorded outcome under the scenario's spec: volatile fields are only checked
for presence, ignored fields not at all, matched fields by their matcher (see
docs/scenario-format.md).

Exit status: 0 when the outcome matches, 1 when it does not (each difference is printed), 2 when
the scenario cannot be replayed over HTTP (bad arguments, unreadable files, no such operation, a
request its service does not serve, a body an operation without one cannot carry, an
"unfinished" outcome) or the server cannot be reached.

Only the Python standard library is used.
"""

import json
import re
import sys
import urllib.error
import urllib.request

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
# The fields spec "defaults" makes volatile wherever they appear.
DEFAULT_VOLATILE = ("request_id", "req_id", "timestamp", "created_at", "updated_at")
TIMEOUT_SECONDS = 30


class CannotReplay(Exception):
    """The scenario cannot be replayed over HTTP; exit status 2."""


def load_json(path, what):
    try:
        with open(path, encoding="utf-8") as file:
            return json.load(file)
    except (OSError, ValueError) as err:
        raise CannotReplay(f"cannot read the {what} {path}: {err}") from err


def find_operation(document, wire_name):
    """The (method, path, operation) whose x-nano-wire-name is wire_name."""
    for path, item in document.get("paths", {}).items():
        for method in METHODS:
            operation = item.get(method)
            if operation and operation.get("x-nano-wire-name") == wire_name:
                return method.upper(), path, operation
    raise CannotReplay(f"the API description has no operation with x-nano-wire-name {wire_name!r}")


# --- Spec rules -----------------------------------------------------------------------------


def parse_pattern(pattern):
    """A path pattern as a list of segments: a key, an int index, "*" (any index) or "**"."""
    segments = []
    i = 0
    while i < len(pattern):
        if pattern.startswith("**", i):
            segments.append("**")
            i += 2
        elif pattern[i] == ".":
            i += 1
        elif pattern.startswith('["', i):
            end = pattern.index('"]', i + 2)
            segments.append(pattern[i + 2 : end])
            i = end + 2
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            inside = pattern[i + 1 : end]
            segments.append("*" if inside == "*" else int(inside))
            i = end + 1
        else:
            match = re.match(r"[^.\[]+", pattern[i:])
            segments.append(match.group(0))
            i += len(match.group(0))
    return segments


def pattern_matches(pattern, path):
    if not pattern:
        return not path
    head, rest = pattern[0], pattern[1:]
    if head == "**":
        return any(pattern_matches(rest, path[k:]) for k in range(len(path) + 1))
    if not path:
        return False
    segment = path[0]
    if head == "*":
        ok = isinstance(segment, int)
    else:
        ok = head == segment
    return ok and pattern_matches(rest, path[1:])


def rules_for(scenario, service, request):
    """The rules that apply to the root call, in order (the last one that selects a place wins)."""
    spec = scenario.get("spec") or {}
    rules = []
    if spec.get("defaults", True):
        rules += [{"path": f"**.{name}", "action": "volatile"} for name in DEFAULT_VOLATILE]
    for rule in spec.get("rules", []):
        if rule.get("service") not in (None, service):
            continue
        if rule.get("request") not in (None, request):
            continue
        rules.append(rule)
    return [(parse_pattern(rule["path"]), rule) for rule in rules]


def rule_at(rules, path):
    chosen = None
    for pattern, rule in rules:
        if pattern_matches(pattern, path):
            chosen = rule
    return chosen


def matcher_accepts(matcher, value):
    if matcher == "any":
        return True
    if matcher == "any_string":
        return isinstance(value, str)
    if matcher == "any_number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(matcher, dict) and "regex" in matcher:
        return isinstance(value, str) and re.search(matcher["regex"], value) is not None
    if isinstance(matcher, dict) and "range" in matcher:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            return False
        bounds = matcher["range"]
        return bounds.get("min", value) <= value <= bounds.get("max", value)
    raise CannotReplay(f"unknown matcher {matcher!r}")


def show_path(path):
    text = ""
    for segment in path:
        if isinstance(segment, int):
            text += f"[{segment}]"
        else:
            text += ("." if text else "") + segment
    return text or "(the whole body)"


def compare(expected, actual, rules, path, differences):
    """Appends to differences every place where actual does not match expected under rules."""
    rule = rule_at(rules, path) if path else None
    if rule is not None:
        action = rule["action"]
        if action == "ignore":
            return
        if action == "volatile":
            if actual is None and expected is not None:
                differences.append(f"{show_path(path)}: missing (volatile, must be present)")
            return
        if action == "match":
            if not matcher_accepts(rule["matcher"], actual):
                differences.append(
                    f"{show_path(path)}: {json.dumps(actual)} does not match {json.dumps(rule['matcher'])}"
                )
            return
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                if (rule_at(rules, path + [key]) or {}).get("action") != "ignore":
                    differences.append(f"{show_path(path + [key])}: missing, expected {json.dumps(expected[key])}")
            elif key not in expected:
                if (rule_at(rules, path + [key]) or {}).get("action") != "ignore":
                    differences.append(f"{show_path(path + [key])}: unexpected {json.dumps(actual[key])}")
            else:
                compare(expected[key], actual[key], rules, path + [key], differences)
    elif isinstance(expected, list) and isinstance(actual, list) and len(expected) == len(actual):
        for index, (e, a) in enumerate(zip(expected, actual)):
            compare(e, a, rules, path + [index], differences)
    elif expected != actual or type(expected) is not type(actual):
        differences.append(f"{show_path(path)}: expected {json.dumps(expected)}, got {json.dumps(actual)}")


# --- The request ----------------------------------------------------------------------------


def send(base_url, method, path, operation, root):
    headers = {"X-Nano-Client-Name": root.get("caller", "")}
    data = None
    if "requestBody" in operation:
        content = operation["requestBody"].get("content", {})
        headers["Content-Type"] = next(iter(content), "application/json; charset=utf-8")
        # Compact, as the recording saw it on the wire (decoding errors name a column).
        data = json.dumps(root["body"], separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    elif root["body"] not in ({}, None):
        raise CannotReplay(
            f"{method} {path} takes no request body, but the scenario's body is {json.dumps(root['body'])}"
        )
    url = base_url.rstrip("/") + path
    request = urllib.request.Request(url, data=data, headers=headers, method=method)
    # A replay targets the server it is given, never a proxy from the environment.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=TIMEOUT_SECONDS) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as err:
        return err.code, err.headers.get("Content-Type", ""), err.read()
    except (urllib.error.URLError, OSError) as err:
        raise CannotReplay(f"cannot reach {url}: {err}") from err


def outcome_of(status, content_type, body):
    """The answer as a scenario outcome, or raises ValueError naming what is wrong with it."""
    text = body.decode("utf-8", errors="replace")
    if status == 200:
        if not body:
            return {"response": None}
        return {"response": json.loads(text)}
    if not content_type.startswith("application/json"):
        raise ValueError(f"HTTP {status} with content type {content_type!r}: {text!r}")
    error = json.loads(text)
    if not isinstance(error, dict):
        raise ValueError(f"HTTP {status} with a body that is not an error object: {text!r}")
    return {"error": {"code": error.get("code", ""), "message": error.get("msg", "")}}


def replay(scenario_path, openapi_path, base_url):
    scenario = load_json(scenario_path, "scenario")
    if scenario.get("version") != 1:
        raise CannotReplay(f"{scenario_path}: version {scenario.get('version')!r}, this script reads version 1")
    document = load_json(openapi_path, "API description")
    root = scenario["root"]
    name = scenario.get("name", scenario_path)
    method, path, operation = find_operation(document, root["request"])
    serving = operation.get("x-nano-service")
    if serving != root["service"]:
        raise CannotReplay(
            f"the scenario sends {root['request']} to service {root['service']!r}, but only service "
            f"{serving!r} serves it ({method} {path}); over HTTP a request reaches only its own "
            "service's endpoint"
        )
    expected = root["outcome"]
    if expected == "unfinished":
        raise CannotReplay("the recorded outcome is \"unfinished\", which an HTTP answer cannot reproduce")
    if scenario.get("unreachable"):
        print(
            f"note: {name} expects {', '.join(scenario['unreachable'])} to be down",
            file=sys.stderr,
        )

    status, content_type, body = send(base_url, method, path, operation, root)
    try:
        actual = outcome_of(status, content_type, body)
    except ValueError as err:
        print(f"mismatch: {name}: {method} {path} answered {err}", file=sys.stderr)
        return 1

    differences = []
    rules = rules_for(scenario, root["service"], root["request"])
    if "response" in expected and "response" in actual:
        compare(expected["response"], actual["response"], rules, [], differences)
    elif "error" in expected and "error" in actual:
        compare(expected["error"], actual["error"], rules, [], differences)
    else:
        differences.append(f"expected {json.dumps(expected)}, got {json.dumps(actual)} (HTTP {status})")
    if differences:
        print(f"mismatch: {name}: {method} {path} answered HTTP {status}:", file=sys.stderr)
        for difference in differences:
            print(f"  {difference}", file=sys.stderr)
        return 1
    print(f"match: {name}: {method} {path} answered HTTP {status} as recorded")
    return 0


def main(argv):
    if len(argv) != 4:
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    try:
        return replay(argv[1], argv[2], argv[3])
    except CannotReplay as err:
        print(f"cannot replay: {err}", file=sys.stderr)
        return 2
    except (KeyError, TypeError) as err:
        print(f"cannot replay: malformed scenario file {argv[1]}: missing or wrong {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
