"""Rewrite the options table of docs/api.md from the declarations in hf/options.py.

    python docs/options_table.py          # rewrite docs/api.md's table
    python docs/options_table.py --check  # exit 1 when the table is out of date

tests/test_options.py runs the check.
"""

import argparse
import pathlib
import sys

from hf import options

API = pathlib.Path(__file__).with_name("api.md")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when the table is out of date")
    parser.add_argument("path", nargs="?", type=pathlib.Path, default=API, help="the page (default: docs/api.md)")
    args = parser.parse_args(argv)
    text = args.path.read_text(encoding="utf-8")
    new = options.replace_table(text)
    if new == text:
        return 0
    if args.check:
        print(f"{args.path}: the options table is out of date; run python docs/options_table.py", file=sys.stderr)
        return 1
    args.path.write_text(new, encoding="utf-8")
    print(f"rewrote the options table of {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
