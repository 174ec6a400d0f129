"""The app's side of the metric contract checked against its `/metrics`: `python -m sizing contract`.

An exposition (Prometheus' text format, or OpenMetrics when it ends with `# EOF`) is parsed by prometheus_client's
own parser, then each series of `APP_CONTRACT` is found by name and checked: its type, the labels the rules select
on, and the values they read. prometheus_client is imported here only, so `plan` never pays for it.
"""

from __future__ import annotations

import difflib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from sizing.core.errors import ConfigError
from sizing.core.model import Model
from sizing.observe.contract import APP_CONTRACT, AppSeries

# Connect and read timeouts, seconds: a /metrics page answers in well under a second.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 30.0
# The text format first: what Prometheus asks for too, and what every client library serves.
ACCEPT = "text/plain;version=0.0.4;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5,*/*;q=0.1"
# An exposition larger than this is not an app's /metrics page.
MAX_BYTES = 64 * 1024 * 1024

Status = Literal["present", "missing", "wrong"]


class SeriesCheck(Model):
    """One contract series as the exposition has it."""

    name: str = Field(description="metric name")
    about: str = Field(description="what the platform reads it for")
    expected_type: str = Field(description="the type the contract asks for")
    expected_labels: list[str] = Field(description="labels the rules select on")
    status: Status = Field(description="present (and right), missing, or wrong (see problems)")
    found_type: str | None = Field(description="its # TYPE in the exposition (None when missing)")
    samples: int = Field(description="samples of it in the exposition")
    problems: list[str] = Field(description="each thing wrong with it, one line each")


class ContractReport(Model):
    """The exposition against the app's side of the contract."""

    source: str = Field(description="the file or URL read")
    met: bool = Field(description="every contract series is present, of its type, with its labels")
    series: list[SeriesCheck] = Field(description="each contract series, in the contract's order")
    other_metrics: int = Field(description="metric families in the exposition that the contract does not name")

    @property
    def present(self) -> list[str]:
        return [s.name for s in self.series if s.status == "present"]

    @property
    def missing(self) -> list[str]:
        return [s.name for s in self.series if s.status == "missing"]

    @property
    def wrong(self) -> list[str]:
        return [s.name for s in self.series if s.status == "wrong"]

    def to_json(self) -> dict[str, Any]:
        return {
            **self.model_dump(),
            "present": self.present,
            "missing": self.missing,
            "wrong": self.wrong,
        }


def read_file(path: str) -> str:
    """The exposition in a file (`-`: standard input)."""
    if path == "-":
        return sys.stdin.read()
    try:
        with Path(path).open("rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(path, "file not found") from None
    except IsADirectoryError:
        raise ConfigError(path, "is a folder, not an exposition file") from None
    except OSError as err:
        raise ConfigError(path, f"cannot read the file: {err.strerror}") from None
    return _text(data, path)


def read_url(url: str) -> str:
    """The exposition a `/metrics` URL serves."""
    import requests

    if not url.startswith(("http://", "https://")):
        raise ConfigError("--url", f"{url!r} is not an http(s) URL")
    try:
        response = requests.get(url, headers={"Accept": ACCEPT}, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
    except requests.Timeout:
        raise ConfigError("--url", f"{url}: no answer within {READ_TIMEOUT:g} s") from None
    except requests.ConnectionError:
        raise ConfigError("--url", f"{url} is unreachable (nothing answers there)") from None
    except requests.RequestException:
        raise ConfigError("--url", f"{url}: the request failed (not a valid URL?)") from None
    if response.status_code >= 400:
        raise ConfigError("--url", f"{url} answered {response.status_code} {response.reason or ''}".rstrip())
    return _text(response.content, url)


def _text(data: bytes, source: str) -> str:
    if len(data) > MAX_BYTES:
        raise ConfigError(source, f"more than {MAX_BYTES // (1024 * 1024)} MiB: not a /metrics page")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(source, "not UTF-8 text (an exposition in the protobuf format?)") from None


def _numbered(text: str, seen: list[int]) -> Iterator[str]:
    for number, line in enumerate(text.splitlines(keepends=True), start=1):
        seen[0] = number
        yield line


def parse(text: str, source: str) -> list[Any]:
    """The exposition's metric families, by prometheus_client's parser; a malformed line is one ConfigError."""
    lines = text.rstrip().splitlines()
    openmetrics = bool(lines) and lines[-1].strip() == "# EOF"
    if openmetrics:
        from prometheus_client.openmetrics.parser import text_fd_to_metric_families
    else:
        from prometheus_client.parser import text_fd_to_metric_families
    line = [0]
    try:
        return list(text_fd_to_metric_families(_numbered(text, line)))
    except (ValueError, IndexError, KeyError, TypeError) as err:
        kind = "OpenMetrics" if openmetrics else "Prometheus text format"
        detail = " ".join(str(err).split())[:200]
        raise ConfigError(f"{source}:{line[0]}", f"not the {kind}: {detail}") from None


def _type(family: Any) -> str:
    return "untyped" if family.type in ("unknown", "untyped") else family.type


def _check(spec: AppSeries, families: list[Any]) -> SeriesCheck:
    # Its samples under its name, or `<name>_total` (a counter: the parser names a counter's samples so, and a
    # `<name>_total` line after `# TYPE <name> counter` is a family of its own); its type from the family of its
    # name (its # TYPE line) when there is one.
    names = (spec.name, f"{spec.name}_total")
    samples = [s for f in families for s in f.samples if s.name in names]
    declared = [f for f in families if f.name == spec.name] or [f for f in families if f.name in names]
    base = {"name": spec.name, "about": spec.about, "expected_type": spec.type, "expected_labels": list(spec.labels)}
    if not declared and not samples:
        contract = {s.name for s in APP_CONTRACT}
        others = sorted(({f.name for f in families} | {s.name for f in families for s in f.samples}) - contract)
        near = difflib.get_close_matches(spec.name, others, n=1, cutoff=0.75)
        problem = "not in the exposition" + (f" (did you mean {near[0]}?)" if near else "")
        return SeriesCheck(**base, status="missing", found_type=None, samples=0, problems=[problem])
    found = _type(declared[0]) if declared else "untyped"
    problems = []
    if not samples and not spec.may_be_empty:
        problems.append("samples: declared (# TYPE) but no sample")
    if found != spec.type:
        exported = sorted({s.name for s in samples} - {spec.name})
        as_name = f", exported as {', '.join(exported)}" if exported else ""
        what = "no # TYPE line (untyped)" if found == "untyped" else f"a {found}"
        problems.append(f"type: {what}{as_name}, not a {spec.type}")
    for label in spec.labels:
        without = [s for s in samples if label not in s.labels]
        if without:
            problems.append(f"labels: {len(without)} of {len(samples)} samples have no {label} label")
    for label, allowed in spec.values.items():
        unknown = sorted({s.labels[label] for s in samples if label in s.labels} - set(allowed))
        if unknown:
            shown = ", ".join(f'{label}="{v}"' for v in unknown)
            problems.append(f"labels: {shown} is none of {', '.join(allowed)}: the rules count it nowhere")
    return SeriesCheck(
        **base,
        status="wrong" if problems else "present",
        found_type=found,
        samples=len(samples),
        problems=problems,
    )


def check(text: str, source: str) -> ContractReport:
    """The exposition `text` (read from `source`) against the app's side of the contract."""
    families = parse(text, source)
    checks = [_check(spec, families) for spec in APP_CONTRACT]
    contract = {name for spec in APP_CONTRACT for name in (spec.name, f"{spec.name}_total")}
    return ContractReport(
        source=source,
        met=all(c.status == "present" for c in checks),
        series=checks,
        other_metrics=sum(1 for f in families if f.name not in contract),
    )
