"""Many `promtool test rules` cases in a few promtool processes, run in the background.

Each case is a test file of its own (promtool reports every file's SUCCESS or FAILED apart, under a `Unit Testing:`
line that names it), next to its rule files, written once however many cases name them. The cases are planned first,
in the order the tests will ask for them, then run in chunks, `parallel` promtool processes at a time; a test waits
only for its own chunk. A process costs promtool's start and the test's Python a subprocess: one per case was ~10 s of
the suite's CPU.

A case asked for that was not planned as asked (the test's body built another one), or that a run left without a
report (promtool died), runs alone: the answer is always promtool's own, for exactly the case the test built.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

CHUNK_CASES = 24
PARALLEL = 2
TIMEOUT_SECONDS = 300
SECTION = re.compile(r"^Unit Testing:  (\S+)$", re.M)
# promtool's evaluation allocates much and lives briefly: Go's collector running at 8x the live heap instead of 2x
# (~200 MB a process) and on one thread takes a quarter of its CPU time off; nothing it computes changes.
GO_ENV = {"GOGC": "800", "GOMAXPROCS": "1"}


@dataclass(frozen=True)
class Outcome:
    """promtool's verdict on one case, and its report (the case file's section of the output)."""

    ok: bool
    report: str


@dataclass(frozen=True)
class _Case:
    rule_files: dict[str, str]
    test: Any
    path: Path


def one_worker_runs_each_module(config: pytest.Config) -> bool:
    """Whether every test of a module runs in this process (no xdist, or xdist with tests/conftest.py's scheduler,
    whose units are modules): only then may a module plan its tests' cases."""
    return not hasattr(config, "workerinput") or bool(config.workerinput.get("whole_modules"))


def dump(data: Any) -> str:
    """YAML as promtool reads it (libyaml's emitter where there is one: the cases are large)."""
    if isinstance(data, str):
        return data
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(data, Dumper=dumper, sort_keys=False, width=1000)


class PromtoolBatch:
    """Plan cases (`plan`), `start` them, read each one's `outcome`; `close` (or leaving its `with`) stops what runs."""

    def __init__(self, promtool: Path, workdir: Path, chunk: int = CHUNK_CASES, parallel: int = PARALLEL) -> None:
        self.promtool = promtool
        self.workdir = workdir
        self.chunk = chunk
        self.parallel = parallel
        self._cases: dict[str, _Case] = {}
        self._rule_paths: dict[str, str] = {}  # rules text → its file name in workdir
        self._chunk_of: dict[str, int] = {}
        self._runs: list[concurrent.futures.Future[dict[str, Outcome]]] = []
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._alone = 0

    def __enter__(self) -> PromtoolBatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def plan(self, key: str, rule_files: Mapping[str, Any], test: Mapping[str, Any]) -> None:
        """Plan the case `key`: `test` (a promtool test file as data) over `rule_files` (name → rules, text or data),
        the names its `rule_files` list gives."""
        if self._pool is not None:
            raise RuntimeError("plan every case before start()")
        texts = {name: dump(rules) for name, rules in rule_files.items()}
        renamed = {name: self._rules_path(text) for name, text in texts.items()}
        written = {**test, "rule_files": [renamed[name] for name in test["rule_files"]]}
        path = self.workdir / f"case-{len(self._cases) + 1}.yaml"
        path.write_text(dump(written))
        self._cases[key] = _Case(texts, test, path)

    def _rules_path(self, text: str) -> str:
        if text not in self._rule_paths:
            name = f"rules-{hashlib.sha256(text.encode()).hexdigest()[:12]}.yaml"
            (self.workdir / name).write_text(text)
            self._rule_paths[text] = name
        return self._rule_paths[text]

    def start(self) -> None:
        """Run the planned cases in chunks, in the order planned, `parallel` processes at a time."""
        keys = list(self._cases)
        self._pool = concurrent.futures.ThreadPoolExecutor(self.parallel, thread_name_prefix="promtool")
        for number, first in enumerate(range(0, len(keys), self.chunk)):
            chunk = keys[first : first + self.chunk]
            self._chunk_of.update(dict.fromkeys(chunk, number))
            self._runs.append(self._pool.submit(self._run, [self._cases[key].path.name for key in chunk]))

    def outcome(self, key: str, rule_files: Mapping[str, Any], test: Mapping[str, Any]) -> Outcome:
        """promtool's verdict on the case: the batch's, if the case was planned exactly so and reported; else a run
        of its own."""
        case = self._cases.get(key)
        texts = {name: dump(rules) for name, rules in rule_files.items()}
        if case is not None and key in self._chunk_of and case.rule_files == texts and case.test == test:
            found = self._runs[self._chunk_of[key]].result().get(case.path.name)
            if found is not None:
                return found
        return self._run_alone(texts, test)

    def _run(self, files: list[str]) -> dict[str, Outcome]:
        done = subprocess.run(
            [str(self.promtool), "test", "rules", *files],
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream: a failure's lines (stderr) stay in its file's section
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            env={**os.environ, **GO_ENV},
        )
        return sections(done.stdout)

    def _run_alone(self, texts: dict[str, str], test: Mapping[str, Any]) -> Outcome:
        self._alone += 1
        workdir = self.workdir / f"alone-{self._alone}"
        workdir.mkdir()
        for name, text in texts.items():
            (workdir / name).write_text(text)
        (workdir / "test.yaml").write_text(dump(test))
        done = subprocess.run(
            [str(self.promtool), "test", "rules", "test.yaml"],
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
            env={**os.environ, **GO_ENV},
        )
        found = sections(done.stdout).get("test.yaml")
        return found if found is not None else Outcome(False, f"exit {done.returncode}:\n{done.stdout}")

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


def sections(output: str) -> dict[str, Outcome]:
    """Each test file's verdict in the output of `promtool test rules FILE...`, by file name."""
    starts = list(SECTION.finditer(output))
    found = {}
    for match, following in zip(starts, [*starts[1:], None], strict=True):
        report = output[match.start() : following.start() if following else len(output)].rstrip()
        found[match.group(1)] = Outcome("\n  SUCCESS" in report and "FAILED" not in report, report)
    return found
