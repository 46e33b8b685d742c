"""The `coves` command: parse arguments and settings, then run one command under Trio."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from . import service
from .config import (SETTINGS, Config, add_setting_flags, describe_values, load_config, production_problems,
                     read_config)
from .backup import BackupError
from .errors import ConfigError, DatabaseError, HostError, MigrationError
from .logs import configure_logging
from .runtime import tune_gc

__all__ = ["main"]

DESCRIPTION = """\
Coves AppView: indexes the Coves forum's records from the AT Protocol firehose into Postgres.

Every setting is an environment variable with a matching flag (flags win). Without DATABASE_URL
an embedded Postgres runs in COVES_DATA_DIR."""


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    add_setting_flags(common)
    parser = argparse.ArgumentParser(prog="coves", description=DESCRIPTION,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser("run", parents=[common], help="run everything (engine + API + metrics)",
                        description="Read Jetstream (JETSTREAM_URL) — or, when FIREHOSE_URL is set, "
                                    "each raw firehose it lists — into Postgres, serve the XRPC API "
                                    "on API_HOST:API_PORT and metrics, until SIGTERM/SIGINT (which "
                                    "drains the current batch and lets requests in flight finish).")
    commands.add_parser("engine", parents=[common], help="run the firehose engine only",
                        description="Read Jetstream (or the FIREHOSE_URL firehoses) into Postgres "
                                    "and serve /metrics.")
    commands.add_parser("api", parents=[common], help="run the XRPC API only",
                        description="Serve the XRPC API (and its /metrics) on API_HOST:API_PORT "
                                    "over the database another process ingests into.")
    openapi = commands.add_parser(
        "openapi", parents=[common], help="write the OpenAPI document generated from the lexicons",
        description="Print (or write with --out) the OpenAPI document of the XRPC API.")
    openapi.add_argument("--out", type=Path, help="write to this file instead of stdout")
    commands.add_parser("migrate", parents=[common], help="apply pending database migrations")
    replay = commands.add_parser(
        "replay", parents=[common], help="apply a Jetstream JSONL file (optionally .zst)",
        description="Apply every event of a Jetstream v1 JSONL file, as the live engine would. "
                    "Safe to repeat: re-applying changes nothing.")
    replay.add_argument("file", type=Path, help="JSONL file, one Jetstream event per line")
    replay.add_argument("--resume", action="store_true",
                        help="continue after the last line a previous replay of this file committed")
    redrive = commands.add_parser(
        "redrive", parents=[common], help="retry stored rejects (after a fix)",
        description="Decode and handle each stored reject again; apply and delete those that "
                    "now pass, keep the others with their new reason.")
    redrive.add_argument("--reason", help="only rejects with this reason (e.g. invalid_record)")
    redrive.add_argument("--limit", type=int, help="examine at most this many rejects")
    redrive.add_argument("--dry-run", action="store_true", help="report only; change nothing")
    reconcile = commands.add_parser(
        "reconcile", parents=[common], help="recount every counter and report drift",
        description="Recount every aggregate (votes, scores, comment, reply, subscriber and post "
                    "counts) from its source rows and list rows that differ. Exit status 1 when "
                    "drift is found and not fixed.")
    reconcile.add_argument("--fix", action="store_true",
                           help="also repair the drift found (holds the writers' lock: ingestion waits)")
    backfill = commands.add_parser(
        "backfill", parents=[common], help="read whole repos (getRepo) into the index",
        description="Read repositories whole from BACKFILL_URL (default: the FIREHOSE_URL hosts) "
                    "and apply their records as the live engine would. Without arguments, "
                    "discover the hosts' repos (listReposByCollection, else listRepos) and read "
                    "every one not done yet; safe to interrupt and run again. Repos a #sync "
                    "event sent back are read again by the next run.")
    backfill.add_argument("targets", nargs="*", metavar="DID_OR_HANDLE",
                          help="read only these repos (again, even if done before)")
    refresh = commands.add_parser(
        "refresh-identities", parents=[common], help="re-resolve handles (and re-check hosts) now",
        description="Mark DIDs due for handle resolution now (and, with --communities, their "
                    "hostedBy check); the running engine's resolver picks them up within seconds. "
                    "Use after a handle change that no identity event announced, or after "
                    "fixing a community's did.json.")
    refresh.add_argument("dids", nargs="*", help="DIDs to refresh")
    refresh.add_argument("--all", action="store_true", help="every DID we know")
    refresh.add_argument("--communities", action="store_true",
                         help="also re-run the hostedBy check of these communities")
    commands.add_parser(
        "backup", parents=[common], help="write a pg_dump archive; prune old ones",
        description="Write BACKUP_DIR/coves-<UTC time>.dump (pg_dump custom format) and delete "
                    "archives older than BACKUP_KEEP_DAYS. Schedule it with cron or a systemd "
                    "timer (ops/RUNBOOK.md) and copy the archives off the machine.")
    restore = commands.add_parser(
        "restore", parents=[common], help="restore an archive into an empty database",
        description="Restore FILE into the (empty) database, then print every table's row count "
                    "and check that every counter matches a recount. Exit status 1 on drift.")
    restore.add_argument("file", type=Path, help="an archive written by `coves backup`")
    commands.add_parser("check-config", parents=[common],
                        help="print the effective configuration (secrets masked) and exit")
    return parser


def _run(args: argparse.Namespace, config: Config) -> int:
    if args.command in ("run", "engine"):
        trio.run(lambda: service.run_engine(config, api=args.command == "run"))
    elif args.command == "api":
        trio.run(lambda: service.run_api(config))
    elif args.command == "openapi":
        from api.openapi import write_openapi
        text = write_openapi(config, args.out)
        if args.out is None:
            sys.stdout.write(text)
    elif args.command == "migrate":
        applied = trio.run(service.migrate, config)
        print(f"applied {len(applied)} migration(s)" + (": " + ", ".join(applied) if applied else ""))
    elif args.command == "replay":
        if not args.file.is_file():
            print(f"coves replay: no such file: {args.file}", file=sys.stderr)
            return 2
        totals = trio.run(lambda: service.replay(config, args.file, resume=args.resume))
        print(f"replayed {args.file} up to line {totals.cursor}: {totals}")
    elif args.command == "redrive":
        report = trio.run(lambda: service.run_redrive(config, reason=args.reason, limit=args.limit,
                                                      dry_run=args.dry_run))
        print(("dry run: " if args.dry_run else "") + str(report))
    elif args.command == "reconcile":
        drift = trio.run(lambda: service.run_reconcile(config, fix=args.fix))
        for item in drift[:50]:
            print(item)
        if len(drift) > 50:
            print(f"… and {len(drift) - 50} more")
        verb = "fixed" if args.fix else "found"
        print(f"reconcile: {len(drift)} drifting row(s) {verb}" if drift else "reconcile: no drift")
        return 1 if drift and not args.fix else 0
    elif args.command == "backfill":
        progress = trio.run(lambda: service.run_backfill(config, args.targets))
        print(("\ninterrupted: run again to resume; " if progress.interrupted else "\nbackfill: ")
              + progress.line())
        return 1 if progress.repos_failed else 0
    elif args.command == "refresh-identities":
        if not args.dids and not args.all:
            print("coves refresh-identities: name DIDs or pass --all", file=sys.stderr)
            return 2
        touched = trio.run(lambda: service.run_refresh_identities(
            config, args.dids, everyone=args.all, communities=args.communities))
        print(f"{touched} row(s) due now; the engine's resolver will pick them up")
    elif args.command == "backup":
        print(f"backup written: {trio.run(service.run_backup, config)}")
    elif args.command == "restore":
        restored = trio.run(service.run_restore, config, args.file)
        print(restored)
        return 0 if restored.ok else 1
    return 0


def _check_config(args: argparse.Namespace) -> int:
    """`coves check-config`: every setting (secrets masked), then every problem found.

    Exit status 0 when the configuration can start in its mode, 2 otherwise. In development it
    also lists what production would refuse, as notes.
    """
    values, problems = read_config(args)
    pairs = describe_values(values)
    width = max(len(name) for name, _ in pairs)
    for name, value in pairs:
        print(f"{name:<{width}}  {value}")
    if len(values) == len(SETTINGS):  # every setting parsed: the API's own checks can run
        from api.server import check_api_config
        try:
            check_api_config(Config(**values))
        except ConfigError as exc:
            problems += [f"{line.strip()} (when serving the API)"
                         for line in str(exc).splitlines()[1:]]
    notes = [] if values.get("env") == "production" else production_problems(values)
    print()
    print("problems:" if problems else "problems: none")
    for problem in problems:
        print(f"  - {problem}")
    if notes:
        print("production would refuse:")
        for note in notes:
            print(f"  - {note}")
    return 2 if problems else 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `coves` console script; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args)
    try:
        config = load_config(args)
    except ConfigError as exc:
        print(f"coves: {exc}", file=sys.stderr)
        return 2
    configure_logging(config.log_level, config.log_format, production=config.production)
    tune_gc()
    try:
        return _run(args, config)
    except (MigrationError, DatabaseError, BackupError, HostError, ConfigError) as exc:
        print(f"coves {args.command}: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
