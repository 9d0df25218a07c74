"""Schemathesis hooks for .ci/schemathesis.sh (loaded through SCHEMATHESIS_HOOKS).

A request whose X-Nano-Deadline-Ms is already spent (0, or a few milliseconds on a busy
machine) is answered 500 with S-TIMEOUT: the protocol's documented answer to a deadline that
passed, which the document lists, but which schemathesis' not_a_server_error check counts as a
server bug. So a valid deadline shorter than one second is lengthened by one second before it is
sent; every other value, including the invalid ones negative testing sends, is left alone.
"""

import schemathesis

DEADLINE_HEADER = "x-nano-deadline-ms"
SHORTEST_MS = 1000


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    for name, value in list((case.headers or {}).items()):
        if name.lower() != DEADLINE_HEADER:
            continue
        text = str(value).strip()
        if text.isascii() and text.isdigit() and int(text) < SHORTEST_MS:
            case.headers[name] = str(int(text) + SHORTEST_MS)
