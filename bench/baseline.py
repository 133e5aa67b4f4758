"""P2 on an earlier revision of the package, measured by today's bench.

``python -m bench.baseline REV``. A change to the audio path must not make P2's
novad/upstream ratios worse than they were on the code before it. Ratios from an old
``RESULTS.md`` are not comparable (another day, other steps, another harness), so this runs
today's P2 on the old code: the package's modules at ``REV`` with today's test tooling
(``testing/``: the fake server and the room-less harness are the measuring instrument, not the
code measured), today's ``bench/`` and fixtures, in a temporary directory, with this
environment's Python. upstream is measured in the same run, so its ratios compare with those
of ``python -m bench.run`` on the current code.

Writes ``bench/baseline/results.json`` and ``RESULTS.md``; ``python -m bench.run`` then reports
the before/after ratios next to its own P2 figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from .report import render

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PACKAGE = "livekit_plugins_openai_novad"
OUT = BENCH / "baseline"
# the harness imports RealtimeModel from here; older revisions kept it in realtime.py
_MODEL_SHIM = "from .realtime import RealtimeModel  # noqa: F401\n"


def build_overlay(rev: str, into: Path) -> None:
    """The package at ``rev`` with today's ``testing/``, plus today's bench and fixtures."""
    archive = subprocess.run(
        ["git", "archive", rev, PACKAGE], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    pkg = into / PACKAGE
    shutil.rmtree(pkg / "testing", ignore_errors=True)
    shutil.copytree(ROOT / PACKAGE / "testing", pkg / "testing")
    if not (pkg / "model.py").exists():
        (pkg / "model.py").write_text(_MODEL_SHIM)
    shutil.copytree(BENCH, into / "bench", ignore=shutil.ignore_patterns("_work", "baseline"))
    shutil.copytree(ROOT / "tests" / "fixtures", into / "tests" / "fixtures")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.baseline", description=__doc__)
    ap.add_argument("rev", help="the git revision measured (the code before the change)")
    ap.add_argument("--modes", default="plain,job_process", help="P2 hostings (bench.run)")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args(argv)
    rev = subprocess.run(
        ["git", "rev-parse", "--short", args.rev],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    out = Path(args.out).resolve()
    with tempfile.TemporaryDirectory(prefix="novad-baseline-") as tmp:
        overlay = Path(tmp)
        build_overlay(rev, overlay)
        # run from the overlay: its package comes first on sys.path, ahead of the checkout's
        cmd = [sys.executable, "-m", "bench.run", "--only", "p2", "--modes", args.modes]
        cmd += ["--profile-n", "0", "--gc-sources-n", "0", "--out", str(out)]
        rc = subprocess.run(cmd, cwd=overlay).returncode
    if rc != 0:
        return rc
    results = out / "results.json"
    data = json.loads(results.read_text())
    data["git"] = rev  # the overlay is no checkout: say which code was measured
    data["command"] = f"python -m bench.baseline {args.rev} --modes {args.modes}"
    results.write_text(json.dumps(data, indent=1) + "\n")
    (out / "RESULTS.md").write_text(render(data))  # with the command and revision above
    print(f"baseline of {rev}: {results}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
