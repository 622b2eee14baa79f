"""`monitord check|run|demo`: the command line."""

from __future__ import annotations

import argparse
import asyncio
import sys

from monitord.config import ConfigError, format_problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="monitord", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check", help="validate a config and its inventory; print every problem")
    check.add_argument("config")

    run = commands.add_parser("run", help="run the daemon")
    run.add_argument("config")
    run.add_argument("--log-json", action="store_true", help="one JSON object per log line")
    run.add_argument("--log-level", default="INFO")

    demo = commands.add_parser("demo", help="run the daemon against a simulated ISP on loopback, with a fault")
    demo.add_argument("--keep-running", action="store_true", help="keep the lab and the daemon running afterwards")
    demo.add_argument("--dir", help="where to put the lab's files (default: a temporary directory)")

    args = parser.parse_args(argv)
    if args.command == "check":
        return _check(args.config)
    if args.command == "run":
        return _run(args.config, json_logs=args.log_json, level=args.log_level)
    from monitord.demo import run_demo

    return asyncio.run(run_demo(keep_running=args.keep_running, directory=args.dir))


def _load(path: str):  # -> Config, or exits
    from monitord.daemon import load_checked

    try:
        return load_checked(path)
    except ConfigError as error:
        print(format_problems(error), file=sys.stderr)
        return None


def _check(path: str) -> int:
    config = _load(path)
    if config is None:
        return 1
    topology = config.topology
    print(
        f"{path}: OK: {len(topology.regions)} regions, {len(topology.exchanges)} exchanges, "
        f"{len(topology.devices)} devices, {len(topology.lines)} subscriber lines"
    )
    return 0


def _run(path: str, *, json_logs: bool, level: str) -> int:
    from monitord import logs
    from monitord.daemon import run_daemon

    config = _load(path)
    if config is None:
        return 1
    logs.setup(json_format=json_logs, level=level.upper(), secrets=config.secrets())
    return asyncio.run(run_daemon(path, config))


if __name__ == "__main__":
    sys.exit(main())
