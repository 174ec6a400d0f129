"""The golden renders: what every stack file makes, in both profiles, kept in `tests/golden/` byte for byte, so a change
that should move nothing (a refactoring) proves it did not, and one that should move something shows exactly what.

For each `Pulumi.<stack>.yaml` and profile, `tests/golden/<stack>-<profile>/` holds the offline render as
`python -m offline.render` writes it (`render/`) and the sizing CLI's `plan --json`, `recommend --json` and
`schedule --json`. Everything is made at one fixed instant (`GOLDEN_EPOCH`, through `SOURCE_DATE_EPOCH`: see
`sizing/core/clock.py`), so a schedule's next starts and the maintenance exclusions do not move with the calendar.

`python -m offline.golden` (`make golden-check`) compares and lists every file that differs, exit 1 when one does;
`--write` (`make golden`) makes them anew, for a change whose differences were reviewed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

from offline.mocks import RecordingMocks
from offline.render import ROOT, run_program, write
from sizing.core.clock import EPOCH_VARIABLE

GOLDEN = ROOT / "tests" / "golden"
# 2026-12-01T00:00:00Z: before the staging open day (2027-06-05), so its one-off jobs and exclusion are rendered.
GOLDEN_EPOCH = 1796083200
PROFILES = ("optimized", "baseline")
COMMANDS = ("plan", "recommend", "schedule")


def stacks(project_dir: Path = ROOT) -> list[str]:
    """Every stack file of the project, by name."""
    return sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in project_dir.glob("Pulumi.*.yaml"))


@contextlib.contextmanager
def fixed_clock() -> Iterator[None]:
    """The plan's clock at `GOLDEN_EPOCH` for the duration."""
    before = os.environ.get(EPOCH_VARIABLE)
    os.environ[EPOCH_VARIABLE] = str(GOLDEN_EPOCH)
    try:
        yield
    finally:
        if before is None:
            del os.environ[EPOCH_VARIABLE]
        else:
            os.environ[EPOCH_VARIABLE] = before


def _cli_json(command: str, stack: str, profile: str) -> str:
    from sizing.cli.commands import run

    argv = [command, "--stack", stack, "--json"]
    if command != "schedule":
        argv += ["--profile", profile]
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = run(argv)
    if code != 0:
        raise RuntimeError(f"python -m sizing {' '.join(argv)} exited {code}")
    return out.getvalue()


def make(out_dir: Path, mocks: RecordingMocks | None = None) -> None:
    """Every golden file, written under `out_dir` (emptied first)."""
    if out_dir.exists():
        shutil.rmtree(out_dir)
    with fixed_clock():
        for stack in stacks():
            for profile in PROFILES:
                case = out_dir / f"{stack}-{profile}"
                write(run_program(stack, ROOT, profile=profile, mocks=mocks), case / "render")
                for command in COMMANDS:
                    # The schedule has no profile of its own: the stack file's is the one it plans in.
                    if command == "schedule" and profile != "optimized":
                        continue
                    (case / f"{command}.json").write_text(_cli_json(command, stack, profile))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def differences(mocks: RecordingMocks | None = None, golden: Path = GOLDEN) -> list[str]:
    """The golden files that a render now would change, add or remove, one line each."""
    with tempfile.TemporaryDirectory(prefix="hyperstudy-golden-") as tmp:
        fresh = Path(tmp) / "golden"
        make(fresh, mocks)
        now, kept = _files(fresh), _files(golden) if golden.exists() else {}
    lines = []
    for name in sorted(set(now) | set(kept)):
        if name not in kept:
            lines.append(f"+ {name} (not in the golden files)")
        elif name not in now:
            lines.append(f"- {name} (no longer made)")
        elif now[name] != kept[name]:
            lines.append(f"~ {name}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m offline.golden", description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="make the golden files anew (after reviewing the diff)")
    args = parser.parse_args(argv)
    if args.write:
        make(GOLDEN)
        print(f"golden renders written to {GOLDEN.relative_to(ROOT)}")
        return 0
    lines = differences()
    if not lines:
        print("the golden renders and JSON outputs are unchanged")
        return 0
    print("\n".join(lines))
    print(f"\n{len(lines)} golden file(s) differ: `make diff A=STACK@main B=STACK` shows how; `make golden` accepts")
    return 1


if __name__ == "__main__":
    sys.exit(main())
