"""`python -m sidecar ARGS`: the same as `idaw sidecar ARGS`, without loading the other idaw commands (fast start)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from idaw.base.errors import IdawError
from sidecar import cli


def main(argv: Sequence[str] | None = None) -> int:
    """Parse `argv` as `idaw sidecar` would and run it; returns the exit code."""
    parser = argparse.ArgumentParser(prog="idaw sidecar", description="run the ML sidecar process standalone")
    cli.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return cli.run(args)
    except IdawError as error:
        print(f"idaw sidecar: error: {error}", file=sys.stderr)
        return error.exit_code
    except Exception as error:
        if os.environ.get("IDAW_DEBUG"):
            raise
        print(f"idaw sidecar: internal error: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
