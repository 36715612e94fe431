"""`fleet safety screen`: run any data set through the detector, one verdict per line.

Output lines match input lines one to one and in order, so `paste` or a join by line number
lines verdicts up with data. A bad input line gets an error object in its place (and a note on
stderr) rather than stopping the run; the exit code says whether any line was bad.
"""

from __future__ import annotations

import argparse
import json
import sys

from fleetcore.safety import screen


def screen_main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="fleet safety screen", description=__doc__)
    ap.add_argument("--plain", action="store_true", help="input is plain text, one per line")
    args = ap.parse_args(argv)
    bad = 0
    out = sys.stdout
    for lineno, line in enumerate(sys.stdin, start=1):
        line = line.rstrip("\n").rstrip("\r")
        if args.plain:
            text: object = line
        else:
            if not line.strip():
                text = None
                err = "empty line"
            else:
                try:
                    obj = json.loads(line)
                except json.JSONDecodeError as exc:
                    obj, err = None, f"invalid JSON: {exc.msg} (column {exc.colno})"
                else:
                    err = 'expected an object with a string "text"'
                text = obj.get("text") if isinstance(obj, dict) else None
            if not isinstance(text, str):
                bad += 1
                print(f"line {lineno}: {err}", file=sys.stderr)
                out.write(json.dumps({"error": err, "line": lineno}) + "\n")
                continue
        assert isinstance(text, str)
        out.write(json.dumps(screen(text).to_json()) + "\n")
    out.flush()
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(screen_main())
