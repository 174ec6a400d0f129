"""A small client of Prometheus' HTTP API for `python -m sizing fit` and `status`: instant and range queries, with
timeouts, credentials from the environment, and every failure as one `ConfigError` line.

Credentials never come from a flag (a flag's value lands in the shell history): `PROMETHEUS_BEARER_TOKEN` (e.g. an
access token for Managed Prometheus' frontend) or `PROMETHEUS_USERNAME` + `PROMETHEUS_PASSWORD` (basic auth).
`requests` is imported when a client is made, so `plan` never pays for it.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sizing.core.errors import ConfigError

TOKEN_ENV = "PROMETHEUS_BEARER_TOKEN"
USERNAME_ENV = "PROMETHEUS_USERNAME"
PASSWORD_ENV = "PROMETHEUS_PASSWORD"
# How far back `fit` and `rightsize` read without --since: two weeks, every weekday's sessions twice (krr's default
# too).
HISTORY_S = 14 * 86400.0
# Prometheus refuses a range query of more than 11,000 points per series.
MAX_POINTS = 11_000
# Connect and read timeouts, seconds: a query over two weeks of a few pods answers well within them.
CONNECT_TIMEOUT = 5.0
READ_TIMEOUT = 60.0


def range_step(start: float, end: float, minimum: float) -> float:
    """The smallest whole-second step from `minimum` that keeps a range query within Prometheus' point limit."""
    return float(max(math.ceil(minimum), math.ceil((end - start) / (MAX_POINTS - 1))))


def _auth(environ: Mapping[str, str]) -> tuple[dict[str, str], tuple[str, str] | None]:
    token = environ.get(TOKEN_ENV)
    user, password = environ.get(USERNAME_ENV), environ.get(PASSWORD_ENV)
    if token and (user or password):
        raise ConfigError(TOKEN_ENV, f"set either it or {USERNAME_ENV}/{PASSWORD_ENV}, not both")
    if bool(user) != bool(password):
        raise ConfigError(USERNAME_ENV if password else PASSWORD_ENV, "basic auth needs both the username and password")
    if token:
        return {"Authorization": f"Bearer {token}"}, None
    return {}, (user, password) if user and password else None


@dataclass
class Prometheus:
    """The HTTP API at `url` (e.g. http://prometheus.monitoring:9090, or a path prefix behind a proxy)."""

    url: str
    environ: Mapping[str, str] = field(default_factory=lambda: dict(os.environ))

    def __post_init__(self) -> None:
        import requests

        if not self.url.startswith(("http://", "https://")):
            raise ConfigError("--prometheus", f"{self.url!r} is not an http(s) URL")
        self.url = self.url.rstrip("/")
        headers, basic = _auth(self.environ)
        self._session = requests.Session()
        self._session.headers.update(headers)
        self._session.auth = basic

    def _get(self, path: str, params: dict[str, Any]) -> Any:
        import requests

        where = f"{self.url}{path}"
        try:
            response = self._session.get(where, params=params, timeout=(CONNECT_TIMEOUT, READ_TIMEOUT))
        except requests.Timeout:
            raise ConfigError("--prometheus", f"{where}: no answer within {READ_TIMEOUT:g} s") from None
        except requests.exceptions.SSLError:
            raise ConfigError("--prometheus", f"{self.url}: the TLS handshake failed (its certificate?)") from None
        except requests.ConnectionError:
            raise ConfigError("--prometheus", f"{self.url} is unreachable (nothing answers there)") from None
        except requests.RequestException:
            raise ConfigError("--prometheus", f"{self.url} is unreachable (the request failed: a valid URL?)") from None
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or response.status_code >= 400 or body.get("status") != "success":
            detail = body.get("error") if isinstance(body, dict) else "not Prometheus' JSON"
            detail = " ".join(str(detail or response.reason or "not Prometheus' API").split())
            raise ConfigError("--prometheus", f"{where} answered {response.status_code}: {detail}")
        if not isinstance(body.get("data"), dict):
            raise ConfigError("--prometheus", f"{where} answered without Prometheus' data object")
        return body["data"]

    def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query: a vector's samples as `{"metric": {...}, "value": [t, "v"]}`."""
        params: dict[str, Any] = {"query": expr}
        if at is not None:
            params["time"] = at
        data = self._get("/api/v1/query", params)
        if data.get("resultType") == "scalar":
            return [{"metric": {}, "value": data["result"]}]
        return list(data.get("result", []))

    def query_range(self, expr: str, start: float, end: float, step: float) -> list[dict[str, Any]]:
        """A range query: each series as `{"metric": {...}, "values": [[t, "v"], ...]}`."""
        data = self._get("/api/v1/query_range", {"query": expr, "start": start, "end": end, "step": step})
        return list(data.get("result", []))

    def now(self) -> float:
        """The server's time (its clock, not ours: backfilled or remote data is relative to it)."""
        sample = self.query("time()")
        try:
            return float(sample[0]["value"][1])
        except (IndexError, KeyError, TypeError, ValueError):
            raise ConfigError("--prometheus", f"{self.url} answered time() without a time") from None


def save_export(export: dict[str, Any], path: Path) -> None:
    """Write the answers a command read (`fit --save`, `rightsize --save`), to be read back with `--from`."""
    try:
        path.write_text(json.dumps(export) + "\n", encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), f"cannot write the export: {err.strerror}") from None


def read_export(path: Path, export_format: str, command: str) -> dict[str, Any]:
    """An export `command --save` wrote: JSON, of `export_format`; what it holds is the command's to check."""
    try:
        export = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(str(path), "export file not found") from None
    except (OSError, UnicodeDecodeError, ValueError):
        raise ConfigError(str(path), f"not a JSON export of `{command} --save`") from None
    if not isinstance(export, dict) or export.get("format") != export_format:
        raise ConfigError(str(path), f"not a `{command} --save` export (format {export_format})")
    return export
