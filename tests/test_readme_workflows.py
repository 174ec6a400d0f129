"""Every day-2 workflow of the README runs as written: each offline command of each `### task` under "Day-2
tasks", in order, in a copy of the project (its own git history, so `git:HEAD` and `@main` mean what they say).

Online commands (pulumi, kubectl, curl, an editor, anything given `--prometheus`) need a cluster; what they would
leave behind is supplied instead: the editor's change, and a Prometheus export (`examples/fit-export.json`,
`examples/rightsize-export.json`) where `fit --save` or `rightsize --save` would have written one.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ONLINE = re.compile(r"^(pulumi|kubectl|curl|\$EDITOR)\b|--prometheus\b")
# What the online steps would have left, keyed by the command they stand in for.
EDITOR_CHANGE = ("replicas: 2\n      cpu_request: 50m", "replicas: 3\n      cpu_request: 50m")


def day2_tasks(readme: str) -> dict[str, list[str]]:
    """`### task` → its shell commands, continuations joined, comments dropped, `&&` chains split."""
    section = readme.split("\n## Day-2 tasks", 1)[1].split("\n## ", 1)[0]
    tasks: dict[str, list[str]] = {}
    for block in re.split(r"\n### ", section)[1:]:
        title, _, body = block.partition("\n")
        commands = []
        for script in re.findall(r"```sh\n(.*?)```", body, flags=re.S):
            for line in script.replace("\\\n", " ").splitlines():
                line = re.sub(r"\s+#\s.*$", "", line).strip()
                commands += [part.strip() for part in line.split(" && ") if part.strip()]
        tasks[title.strip()] = commands
    return tasks


def test_the_parser_sees_every_task_and_splits_chains():
    tasks = day2_tasks((ROOT / "README.md").read_text())
    assert set(tasks) >= {"Change a size", "Review the diff", "Roll back", "Book a session", "Check capacity now"}
    assert "make plan" in tasks["Book a session"] and any(c.startswith("pulumi up") for c in tasks["Book a session"])
    assert all("#" not in c.split("'")[0] for cs in tasks.values() for c in cs), "a comment left in a command"
    assert ONLINE.search("venv/bin/python -m sizing status --stack prod --prometheus http://x")
    assert not ONLINE.search("venv/bin/python -m sizing fit --stack prod --from prod-14d.json")


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    """The tracked files as they are now, committed on a branch `main`, with the shared venv and tools."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout
    copy = tmp_path_factory.mktemp("readme") / "hyperstudy-infra"
    for name in filter(None, listed.decode().split("\0")):
        if (ROOT / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, copy / name)
    for shared in ("venv", ".bin"):
        if (ROOT / shared).exists():
            (copy / shared).symlink_to(ROOT / shared)
    # The shared venv is this checkout's: its markers must read as up to date in the copy, whatever the checkout's
    # files' times (a fresh worktree's requirements files are newer than a venv made before it).
    for requirements in copy.glob("requirements*.txt"):
        os.utime(requirements, (0, 0))
    git = ["git", "-C", str(copy), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q", "-b", "main"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "as the README finds it"], check=True)
    return copy


def _stand_in(command: str, project: Path) -> None:
    """Do what an online command would have done for the offline ones after it."""
    if command.startswith("$EDITOR"):
        stack = project / "Pulumi.prod.yaml"
        text = stack.read_text()
        assert EDITOR_CHANGE[0] in text, "the stand-in edit no longer applies: pick another"
        stack.write_text(text.replace(*EDITOR_CHANGE, 1))
    save = re.search(r"--save (\S+)", command)
    if save:
        sample = "rightsize-export.json" if " rightsize " in command else "fit-export.json"
        shutil.copy(ROOT / "examples" / sample, project / save.group(1))


def _run(command: str, project: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-o", "pipefail", "-c", command],
        cwd=project,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "HOME": str(project), "COLUMNS": "120", "LANG": "C.UTF-8"},
    )


# What a command's output must show, where the README says what it shows.
EXPECT = {
    "make diff B=git:HEAD": "~ Deployment hyperstudy/frontend",
    "make diff A=prod B=prod:baseline": "0 replacements",
    "venv/bin/python -m sizing schedule --stack prod": "tuesday-lab",
    "make plan": "cost: $",
}


@pytest.mark.programs  # make, git, and renders in second processes
def test_every_offline_day2_workflow_runs_as_written(project):
    tasks = day2_tasks((ROOT / "README.md").read_text())
    ran: dict[str, list[str]] = {}
    for task, commands in tasks.items():
        for command in commands:
            if ONLINE.search(command):
                _stand_in(command, project)
                continue
            result = _run(command, project)
            assert result.returncode == 0, f"{task}: {command}\n{result.stdout[-2000:]}{result.stderr[-2000:]}"
            if command in EXPECT:
                assert EXPECT[command] in result.stdout, f"{task}: {command}\n{result.stdout[-2000:]}"
            ran.setdefault(task, []).append(command)
        if task == "Change a size":  # the edit is reviewed, then committed before the next task
            subprocess.run(["git", "-C", str(project), "commit", "-qam", "edit"], check=True)
    # Every task has an offline part, and the README's example commands all ran.
    assert set(ran) == set(tasks), set(tasks) - set(ran)
    assert set(EXPECT) <= {c for cs in ran.values() for c in cs}


@pytest.mark.programs
def test_the_quick_start_plans_run_as_written(project):
    """The README's opening: `make plan` for prod and `make plan STACK=example` for the stack file to copy."""
    intro = (ROOT / "README.md").read_text().split("\n## ", 1)[0]
    commands = sorted(set(re.findall(r"^(make plan[^#\n]*?)\s*(?:#|$)", intro, flags=re.M)))
    commands += sorted(set(re.findall(r"`(make plan [^`]+)`", intro)) - set(commands))
    assert commands == ["make plan", "make plan STACK=example"], commands
    for command in commands:
        result = _run(command, project)
        assert result.returncode == 0 and "cost: $" in result.stdout, f"{command}\n{result.stderr[-2000:]}"
