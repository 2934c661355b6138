"""`idaw sidecar`: run the sidecar standalone (for the plugin), make CURVE keys, or query a running one.

Heavy imports (zmq, numpy, the handler's model) happen inside run(), so `idaw --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from idaw.base.defaults import DEFAULT_ENDPOINT, DEFAULT_HANDLER
from idaw.base.errors import IdawError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Register the options of `idaw sidecar`."""
    default = DEFAULT_ENDPOINT
    parser.add_argument(
        "--bind",
        default=default,
        metavar="ENDPOINT",
        help=f"ZeroMQ endpoint to listen on (default {default}; tcp://127.0.0.1:* picks a free port). "
        "Anything but ipc:// or addresses that are all loopback (127.x.y.z, [::1], localhost) needs --curve",
    )
    parser.add_argument(
        "--handler",
        default=DEFAULT_HANDLER,
        metavar="SPEC",
        help=f"describe handler: 'semantic-eq' (the trained model), 'fallback' (SAFE-DB table, no ML) or "
        f"'package.module:factory' (default {DEFAULT_HANDLER})",
    )
    parser.add_argument("--curve", action="store_true", help="encrypt and authenticate with CURVE keys (--key-dir)")
    parser.add_argument(
        "--key-dir",
        type=Path,
        default=None,
        metavar="DIR",
        help="CURVE key directory (default $IDAW_SIDECAR_KEYS or ~/.config/idaw/sidecar-keys)",
    )
    parser.add_argument(
        "--make-keys", action="store_true", help="create server and client CURVE keys in --key-dir, exit"
    )
    parser.add_argument("--overwrite-keys", action="store_true", help="with --make-keys: replace existing keys")
    parser.add_argument("--status", action="store_true", help="print the status of the sidecar at --bind as JSON, exit")
    parser.add_argument(
        "--describe",
        nargs="+",
        default=None,
        metavar="WORD",
        help="send a describe request to the sidecar at --bind, print the answer as JSON, exit",
    )
    parser.add_argument("--intensity", type=float, default=0.7, help="with --describe: 0..1 (default 0.7)")
    parser.add_argument("--ready-file", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--exit-with-parent", action="store_true", help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    """Run `idaw sidecar`; returns the exit code (user errors are raised as IdawError)."""
    from idaw.base import keyfiles
    from idaw.base.endpoint import EndpointError, parse_endpoint
    from sidecar import keys as curve

    key_dir = args.key_dir or keyfiles.default_key_dir()
    try:
        if args.make_keys:
            written = curve.make_keys(key_dir, overwrite=args.overwrite_keys)
            print(
                f"wrote CURVE keys to {key_dir}: give server.key and client.key_secret to the engine side; "
                f"{len(written)} files",
                file=sys.stderr,
            )
            return 0
        parse_endpoint(args.bind)  # a typo reads as a typo, before any key is looked for
        if args.status or args.describe:
            return _query(args, key_dir)
        return _serve(args, key_dir)
    except (keyfiles.KeysError, EndpointError) as error:
        raise IdawError(str(error)) from None


def _query(args: argparse.Namespace, key_dir: Path) -> int:
    from idaw.base import keyfiles
    from idaw.base.endpoint import parse_endpoint
    from idaw.base.protocol.replies import describe_retrying
    from sidecar.client import SidecarClient, SidecarError

    keys = keyfiles.load_client_keys(key_dir) if args.curve or not parse_endpoint(args.bind).loopback else None
    with SidecarClient(args.bind, keys) as client:
        try:
            if args.describe:
                result: Any = describe_retrying(client, args.describe, args.intensity).__dict__
            else:
                result = client.status()
        except SidecarError as error:
            raise IdawError(str(error)) from None
    print(json.dumps(result, indent=2))
    return 0


def _serve(args: argparse.Namespace, key_dir: Path) -> int:
    from idaw.base import keyfiles
    from idaw.base.endpoint import is_loopback_endpoint
    from sidecar.handlers import load_handler, start_background
    from sidecar.server import ServerError, SidecarServer, require_curve_for

    keys = keyfiles.load_server_keys(key_dir) if args.curve else None
    parent = os.getppid() if args.exit_with_parent else None
    try:
        require_curve_for(args.bind, keys)  # before loading a model that may take seconds
        handler = load_handler(args.handler)
        server = SidecarServer(args.bind, handler, keys)
        endpoint = server.bind()
    except (ServerError, ValueError) as error:
        raise IdawError(str(error)) from None
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    if args.ready_file is not None:
        temporary = args.ready_file.with_name(args.ready_file.name + ".tmp")
        temporary.write_text(endpoint + "\n", encoding="utf-8")
        temporary.replace(args.ready_file)  # atomic: whoever waits never reads half a line
    start_background(handler)  # e.g. the synonym model: vocabulary words are answered meanwhile
    security = "CURVE" if keys else ("loopback, no CURVE" if is_loopback_endpoint(endpoint) else "no CURVE")
    print(
        f"idaw sidecar: listening on {endpoint} ({security}; handler {handler.name}); Ctrl-C stops it",
        file=sys.stderr,
        flush=True,
    )
    try:
        server.serve(stop, parent_pid=parent)
    finally:
        server.close()
    counters = server.counters
    print(
        f"idaw sidecar: stopped; {sum(counters.received.values())} messages, "
        f"{sum(counters.rejected.values())} rejected",
        file=sys.stderr,
    )
    return 0
