"""Run downhill 0.4.0's own test suite against :mod:`hf.first_order`.

downhill's tests are not part of this repository (they are downhill's code, and
the PyPI sdist does not ship them). This script takes them from a downhill
source checkout or git mirror, rewrites them mechanically, runs pytest on the
rewritten copy in a temporary directory and writes the counts and the failing
tests to ``bench/results/downhill_suite.json``.

Usage::

    python bench/downhill_suite.py --git-dir /path/to/downhill/.git [--tag v0.4.0]
    python bench/downhill_suite.py --source /path/to/downhill-checkout

``--source`` is a working tree whose ``test/`` folder is used as it is;
``--git-dir`` exports ``test/`` at ``--tag`` (default ``v0.4.0``) with
``git archive``.

The rewrites, and nothing else, applied to every ``test/*.py``:

1. ``import downhill`` becomes ``import hf.first_order as downhill``;
2. the word ``theano`` becomes ``pytensor`` (``import theano``,
   ``import theano.tensor as TT``, ``theano.shared``);
3. ``ss.csc.csc_matrix`` / ``ss.csr.csr_matrix`` become ``ss.csc_matrix`` /
   ``ss.csr_matrix``: SciPy deprecated the ``scipy.sparse.csc`` and
   ``scipy.sparse.csr`` namespaces, and the class is the same object.

pytest runs in the temporary directory with an empty ``pytest.ini`` (so this
repository's configuration and conftest do not apply), the default ``prepend``
import mode (downhill's tests ``import util`` from their own folder) and the
same Python as this script. The JSON holds the downhill commit, the counts, each
failing test's id with the last line of its error, and the versions used.
"""

from __future__ import annotations

import argparse
import io
import json
import pathlib
import platform
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import xml.etree.ElementTree as ET

ROOT = pathlib.Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "bench" / "results" / "downhill_suite.json"

#: (pattern, replacement) pairs applied in order to each test file; see the module docstring.
REWRITES = (
    (re.compile(r"^import downhill\s*$", re.M), "import hf.first_order as downhill"),
    (re.compile(r"\btheano\b"), "pytensor"),
    (re.compile(r"\bss\.(csc|csr)\.(cs[cr]_matrix)\b"), r"ss.\2"),
)


def rewrite(text: str) -> str:
    """One downhill test file with the rewrites of the module docstring applied."""
    for pattern, replacement in REWRITES:
        text = pattern.sub(replacement, text)
    return text


def export_tests(dest: pathlib.Path, source: str | None = None, git_dir: str | None = None,
                 tag: str = "v0.4.0") -> str:
    """Copy downhill's ``test/`` folder into ``dest``; return the commit (or ``'working tree'``)."""
    if source is not None:
        src = pathlib.Path(source) / "test"
        if not src.is_dir():
            raise SystemExit(f"downhill_suite: {src} is not a directory")
        for f in src.glob("*.py"):
            shutil.copy(f, dest / f.name)
        try:
            return subprocess.run(["git", "-C", source, "rev-parse", "HEAD"], check=True,
                                  capture_output=True, text=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            return "working tree"
    if (pathlib.Path(git_dir) / ".git").exists():  # a working tree's folder was given
        git_dir = str(pathlib.Path(git_dir) / ".git")
    git = ["git", f"--git-dir={git_dir}"]
    commit = subprocess.run(git + ["rev-parse", f"{tag}^{{commit}}"], check=True,
                            capture_output=True, text=True).stdout.strip()
    archive = subprocess.run(git + ["archive", "--format=tar", commit, "test"], check=True,
                             capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile() and member.name.endswith(".py"):
                data = tar.extractfile(member).read()
                (dest / pathlib.PurePosixPath(member.name).name).write_bytes(data)
    return commit


def run_suite(test_dir: pathlib.Path, timeout: float = 1800) -> dict:
    """Rewrite the files in ``test_dir``, run pytest there, return the parsed results."""
    for f in sorted(test_dir.glob("*.py")):
        f.write_text(rewrite(f.read_text()))
    (test_dir / "pytest.ini").write_text("[pytest]\n")
    report = test_dir / "report.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
           f"--junitxml={report}", "--rootdir", str(test_dir), str(test_dir)]
    proc = subprocess.run(cmd, cwd=test_dir, capture_output=True, text=True, timeout=timeout)
    if not report.exists():
        raise SystemExit(f"downhill_suite: pytest wrote no report\n{proc.stdout}\n{proc.stderr}")
    tests, failing = 0, []
    for case in ET.parse(report).getroot().iter("testcase"):
        tests += 1
        module = case.get("classname", "")
        test_id = f"{module}::{case.get('name')}"
        for kind in ("failure", "error"):
            node = case.find(kind)
            if node is not None:
                lines = [ln for ln in (node.get("message") or node.text or "").splitlines() if ln.strip()]
                failing.append({"test": test_id, "kind": kind, "error": lines[-1][:300] if lines else ""})
                break
        else:
            if case.find("skipped") is not None:
                failing.append({"test": test_id, "kind": "skipped", "error": ""})
    return {"returncode": proc.returncode, "tests": tests, "failing": failing,
            "summary": proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""}


def versions() -> dict:
    out = {"python": platform.python_version()}
    for name in ("hf", "pytensor", "numpy", "scipy", "pandas", "pytest"):
        try:
            out[name] = __import__(name).__version__
        except (ImportError, AttributeError):
            out[name] = None
    try:
        out["hf_commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], check=True,
                                          capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        out["hf_commit"] = None
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--source", help="a downhill source checkout (its test/ folder is used)")
    where.add_argument("--git-dir", help="a downhill git directory (test/ is exported at --tag)")
    parser.add_argument("--tag", default="v0.4.0", help="tag or commit for --git-dir (default v0.4.0)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="JSON file to write")
    parser.add_argument("--keep", action="store_true", help="print and keep the temporary directory")
    args = parser.parse_args(argv)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="downhill_suite_"))
    try:
        commit = export_tests(tmp, source=args.source, git_dir=args.git_dir, tag=args.tag)
        result = run_suite(tmp)
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)
    failed = sum(1 for f in result["failing"] if f["kind"] != "skipped")
    record = {
        "suite": "downhill test/ folder, rewritten as bench/downhill_suite.py describes",
        "downhill_ref": args.tag if args.git_dir else "working tree",
        "downhill_commit": commit,
        "tests": result["tests"],
        "passed": result["tests"] - len(result["failing"]),
        "failed": failed,
        "skipped": len(result["failing"]) - failed,
        "failing": result["failing"],
        "pytest_summary": result["summary"],
        "environment": versions(),
    }
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(record, indent=2) + "\n")
    print(f"{record['passed']} of {record['tests']} passed ({record['pytest_summary']}); wrote {out}")
    for f in record["failing"]:
        print(f"  {f['kind']:7s} {f['test']}: {f['error']}")
    return record


if __name__ == "__main__":
    main()
