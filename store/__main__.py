"""Command line loader for files larger than a browser upload.

    python -m store load FILE --kind events|spend|survey [--map canonical=header ...] [--timezone TZ] [--db PATH]
    python -m store pageview-events [NAME ...] [--db PATH]

``pageview-events`` prints the page-view event names the session rollups are kept for, or, given names, keeps
them for those from now on (deriving every stored session again when they differ): the Traffic page then reads
the rollups for those names instead of deriving every session at each visit.

Exit codes: 0 loaded (rejected rows, if any, are listed with their line and reason); 2 the file or
an argument was refused (nothing written); 1 the database could not be opened or written.
A progress bar is shown on a terminal (``--progress`` forces it, ``--quiet`` hides it).
"""
from __future__ import annotations

import argparse
import sys

import duckdb

from . import connect, load_events, load_spend, load_survey, set_pageview_events, stored_pageview_events
from .errors import UserInputError


def _parse_map(items: list[str]) -> dict[str, str]:
    mapping = {}
    for item in items:
        if "=" not in item:
            raise UserInputError(f"--map takes canonical=header, got '{item}'.")
        key, value = item.split("=", 1)
        mapping[key.strip()] = value
    return mapping


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m store", description="Load files into the opsfunnel database.")
    sub = parser.add_subparsers(dest="command", required=True)
    load = sub.add_parser("load", help="load one file")
    load.add_argument("file")
    load.add_argument("--kind", choices=("events", "spend", "survey"), default="events")
    load.add_argument("--map", action="append", default=[], metavar="CANONICAL=HEADER")
    load.add_argument("--timezone", default="UTC", help="time zone of naive times in the file (events)")
    load.add_argument("--db", default=None, help="database file (default $OPSFUNNEL_DB or data/opsfunnel.duckdb)")
    load.add_argument("--quiet", action="store_true", help="no progress display")
    load.add_argument("--progress", action="store_true", help="show the progress bar even when not on a terminal")
    pv = sub.add_parser("pageview-events", help="show or set the page-view events the session rollups are kept for")
    pv.add_argument("names", nargs="*", metavar="NAME", help="exact event names (none: show the current ones)")
    pv.add_argument("--db", default=None, help="database file (default $OPSFUNNEL_DB or data/opsfunnel.duckdb)")
    args = parser.parse_args(argv)
    if args.command == "pageview-events":
        return _with_database(args.db, lambda con: _pageview_events(con, args.names), "changed")
    return _with_database(args.db, lambda con: _load(con, args), "loaded")


def _with_database(db: str | None, work, nothing: str) -> int:
    """``work(con)`` on the database ``db``, returning 0 — or, printing why, 2 for a refused input and 1 for a
    database that could not be used (a write is one transaction: "nothing was ``nothing``")."""
    con = None
    try:
        con = connect(db)
        work(con)
    except UserInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (duckdb.Error, OSError) as exc:
        print(f"error: the database could not be used ({str(exc).splitlines()[0]}); nothing was {nothing}.",
              file=sys.stderr)
        return 1
    finally:
        if con is not None:
            con.close()
    return 0


def _load(con, args) -> None:
    if not args.quiet and (args.progress or sys.stderr.isatty()):
        con.execute("SET enable_progress_bar = true; SET enable_progress_bar_print = true")
    mapping = _parse_map(args.map)
    print(f"Loading {args.file} as {args.kind} ...", file=sys.stderr, flush=True)
    if args.kind == "events":
        report = load_events(con, args.file, mapping, source_timezone=args.timezone)
    elif args.kind == "spend":
        report = load_spend(con, args.file, mapping)
    else:
        report = load_survey(con, args.file, mapping)
    print(report.summary())
    if report.rejected:
        shown = report.rejected_samples.head(20)
        print(f"rejected rows (first {len(shown)} of {report.rejected:,}; all are in the rejected_rows table):")
        for line, reason in zip(shown["line"], shown["reason"]):
            print(f"  line {line}: {reason}")


def _pageview_events(con, names: list[str]) -> None:
    if any(n.strip() for n in names):
        print("Deriving the sessions for these page-view events ...", file=sys.stderr, flush=True)
    if names:
        set_pageview_events(con, names)
    print(", ".join(stored_pageview_events(con)))


if __name__ == "__main__":
    raise SystemExit(main())
