"""`python -m config.serve`: daphne serving the standalone site (the Dockerfile's CMD, `make run`).

With DJANGO_BEHIND_PROXY=1 daphne gets `--proxy-headers`: the client address comes from X-Forwarded-For
and the scheme from X-Forwarded-Proto. Set it only behind a proxy that overwrites those headers, since
daphne believes whoever sends them.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence

from config.environment import env_flag


def daphne_command(host: str, port: int, environ: Mapping[str, str]) -> list[str]:
    """The daphne command line for this environment."""
    command = [sys.executable, "-m", "daphne", "-b", host, "-p", str(port)]
    if env_flag("DJANGO_BEHIND_PROXY", environ=environ):
        command.append("--proxy-headers")
    return [*command, "config.asgi:application"]


def main(argv: Sequence[str] | None = None) -> None:
    """Replace this process with daphne."""
    parser = argparse.ArgumentParser(prog="python -m config.serve", description=__doc__)
    parser.add_argument("--bind", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="TCP port (default 8000)")
    args = parser.parse_args(argv)
    command = daphne_command(args.bind, args.port, os.environ)
    sys.stdout.flush()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
