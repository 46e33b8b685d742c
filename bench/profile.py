"""Where the time goes: py-spy's raw (collapsed-stack) output reduced to the busiest functions.

    python -m bench.profile FILE [--self] [--under FUNCTION]

bench/api_load.py records the API server with py-spy at its saturation rate; to profile the
engine, run `py-spy record -f raw -o FILE -- python -m bench.ingest --mix coves` and read FILE
with `--under run_ingest` (the reader task) or without (everything).
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

__all__ = ["main", "top_functions"]

_FRAME = re.compile(r"(?P<function>.*?) \((?P<file>.*?):\d+\)")


def _name(frame: str) -> str:
    match = _FRAME.match(frame)
    if match is None:
        return frame
    parts = Path(match["file"]).parts
    return f"{match['function']} ({'/'.join(parts[-2:])})"


def top_functions(raw: str, *, inclusive: bool = False, under: str | None = None,
                  limit: int = 30) -> list[tuple[float, str]]:
    """(share of samples, function) for the busiest functions, own time or inclusive."""
    counts: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, number = line.rpartition(" ")
        if not stack or not number.isdigit():
            continue
        frames = [_name(frame) for frame in stack.split(";")]
        if under is not None and not any(under in frame for frame in frames):
            continue
        total += int(number)
        for name in (set(frames) if inclusive else frames[-1:]):
            counts[name] += int(number)
    return [(count / total, name) for name, count in counts.most_common(limit)] if total else []


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("file", type=Path)
    parser.add_argument("--self", dest="own", action="store_true", help="own time, not inclusive")
    parser.add_argument("--under", help="only stacks through this function")
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args(argv)
    for share, name in top_functions(args.file.read_text(), inclusive=not args.own,
                                     under=args.under, limit=args.limit):
        print(f"{share * 100:5.1f} %  {name}")


if __name__ == "__main__":
    main()
