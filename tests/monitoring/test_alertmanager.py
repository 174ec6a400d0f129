"""Alerts reach a person: every stack's Alertmanager config passes amtool, routes each severity where the stack says,
and a real Alertmanager (Debian's 0.25) delivers a critical alert to the pager and the chat, a warning to the chat
only, and the Watchdog to the dead-man's switch alone, again and again, reading the credentials from files as the
installed stack mounts them.

Debian's 0.25 predates a webhook's `url_file` (Alertmanager 0.26, prometheus/alertmanager#3223; the chart runs 0.28
and its operator reads the field from 0.69 on): for it, and only for it, the heartbeat's `url_file` becomes the `url`
its file holds (`for_debian`).
"""

from __future__ import annotations

import copy
import itertools
import json
import os
import socket
import subprocess
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

from monitoring.alertmanager import SECRETS_DIR, alertmanager_config, inline_credentials, secret_file
from monitoring.names import WATCHDOG
from sizing.config.alerting import HEARTBEAT_RECEIVER, SEVERITIES, AlertingConfig
from sizing.config.loader import load_stack
from sizing.config.stack import StackConfig

# Real programs (Debian's prometheus, promtool, alertmanager): the artifact layer, outside `make unit`.
pytestmark = pytest.mark.programs

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".bin"
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


def _binary(name: str) -> Path:
    path = BIN / name
    if path.is_file() and os.access(path, os.X_OK):
        return path
    if os.environ.get("CI") == "true":
        pytest.fail(f"{name} missing: run tools/install-prometheus")
    pytest.skip(f"{name} not found at {path}: run tools/install-prometheus")
    raise AssertionError("unreachable")


def _config(stack: str) -> StackConfig:
    return load_stack(stack, ROOT)


def _rendered(config: StackConfig) -> dict:
    """The config the stack's Alertmanager gets: files for the installed one, inline for Managed Prometheus'."""
    alerting = config.monitoring.alerting
    if config.monitoring.install_stack:
        return alertmanager_config(alerting)
    return alertmanager_config(
        alerting, inline_credentials({key: f"https://example.org/{key}" for key in config.secret_keys()})
    )


def for_debian(config: dict, read: Callable[[str], str]) -> dict:
    """The config with each webhook's `url_file` replaced by the `url` that file holds (`read(path)`), the one field
    Debian's Alertmanager 0.25 lacks; nothing else changes."""
    changed = copy.deepcopy(config)
    for receiver in changed["receivers"]:
        for webhook in receiver.get("webhook_configs", []):
            if "url_file" in webhook:
                webhook["url"] = read(webhook.pop("url_file"))
    return changed


def test_for_debian_changes_only_the_webhook_url_file(prod_config):
    rendered = _rendered(prod_config)
    changed = for_debian(rendered, lambda path: f"https://read.example{path}")
    heartbeat = secret_file(prod_config.monitoring.alerting.heartbeat.url_secret)
    assert changed["receivers"][-1] == {
        "name": HEARTBEAT_RECEIVER,
        "webhook_configs": [{"url": f"https://read.example{heartbeat}", "send_resolved": False}],
    }
    assert {**changed, "receivers": changed["receivers"][:-1]} == {**rendered, "receivers": rendered["receivers"][:-1]}


@pytest.mark.parametrize("stack", STACKS)
def test_every_stacks_alertmanager_config_passes_amtool(stack, tmp_path):
    config = _config(stack)
    if not config.monitoring.alerting.receivers:
        pytest.skip(f"{stack} configures no receivers")
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(for_debian(_rendered(config), lambda _: "https://hc-ping.example/check")))
    done = subprocess.run([_binary("amtool"), "check-config", path], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


def _routes_test(config: StackConfig, tmp_path: Path, *labels: str) -> list[str]:
    """The receivers amtool routes an alert with `labels` to, by the stack's rendered config."""
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(for_debian(_rendered(config), lambda _: "https://hc-ping.example/check")))
    done = subprocess.run(
        [_binary("amtool"), "config", "routes", "test", f"--config.file={path}", *labels],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().split(",")


@pytest.mark.parametrize("stack", STACKS)
def test_amtool_routes_the_watchdog_to_the_heartbeat_alone(stack, tmp_path):
    """Every stack that sets a dead-man's switch (the example leaves it to the adopter, and `plan` warns): the Watchdog
    (kube-prometheus-stack's, or the rules' own on Managed Prometheus) reaches it and nothing else, whatever its
    severity label; without a heartbeat it reaches no one."""
    config = _config(stack)
    if config.monitoring.alerting.heartbeat is None:
        assert "monitoring.alerting" in " ".join(config.warnings())
        pytest.skip(f"{stack} configures no heartbeat")
    for severity in ("none", "critical"):
        labels = (f"alertname={WATCHDOG}", f"severity={severity}", "namespace=hyperstudy")
        assert _routes_test(config, tmp_path, *labels) == [HEARTBEAT_RECEIVER]
    without = config.monitoring.alerting.model_copy(update={"heartbeat": None})
    config = config.model_copy(update={"monitoring": config.monitoring.model_copy(update={"alerting": without})})
    assert _routes_test(config, tmp_path, f"alertname={WATCHDOG}", "severity=none") == ["null"]


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("severity", SEVERITIES)
def test_amtool_routes_each_severity_to_the_configured_receivers(stack, severity, tmp_path):
    config = _config(stack)
    alerting = config.monitoring.alerting
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(for_debian(_rendered(config), lambda _: "https://hc-ping.example/check")))
    done = subprocess.run(
        [_binary("amtool"), "config", "routes", "test", f"--config.file={path}", f"severity={severity}", "alertname=X"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().split(",") == (alerting.routes.get(severity) or ["null"])


def test_every_integration_kind_is_a_config_alertmanager_accepts(tmp_path):
    # Webhooks are left out: their url_file arrived in Alertmanager 0.26 (the chart runs 0.28.1, Debian has 0.25).
    alerting = AlertingConfig.model_validate(
        {
            "receivers": {
                "pager": {"pagerduty": {"routing_key_secret": "pd"}},
                "chat": {"slack": {"channel": "#ops", "api_url_secret": "slack"}},
                "mail": {
                    "email": {
                        "to": "ops@example.org",
                        "from": "alerts@example.org",
                        "smarthost": "smtp.example.org:587",
                        "auth_username": "alerts",
                        "auth_password_secret": "smtp",
                    }
                },
            },
            "routes": {"critical": ["pager", "chat", "mail"], "warning": ["chat"]},
        }
    )
    path = tmp_path / "alertmanager.yaml"
    path.write_text(yaml.safe_dump(alertmanager_config(alerting)))
    done = subprocess.run([_binary("amtool"), "check-config", path], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout + done.stderr


# --- delivery by a real Alertmanager ----------------------------------------------------------------------------------


class _Inbox(BaseHTTPRequestHandler):
    """A fake Slack webhook, PagerDuty events API and dead-man's switch: records every POST by path, and when."""

    received: list[tuple[str, dict]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.arrivals.append((self.path, time.monotonic()))  # type: ignore[attr-defined]
        self.server.received.append((self.path, json.loads(body or b"{}")))  # type: ignore[attr-defined]
        self.send_response(202 if self.path.startswith("/pagerduty") else 200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def inbox() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Inbox)
    server.received = []  # type: ignore[attr-defined]
    server.arrivals = []  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()


# The heartbeat interval of the delivery test: a POST at least this often (Alertmanager ticks every half of it).
HEARTBEAT_SECONDS = 1
# Debian's build reads its notification templates from here (tools/install-prometheus puts them there).
TEMPLATES = Path("/usr/share/prometheus/alertmanager/default.tmpl")


@pytest.fixture
def alertmanager(tmp_path: Path, inbox: ThreadingHTTPServer) -> Iterator[str]:
    """Prod's Alertmanager config, credentials read from files as the chart mounts them, delivering to the inbox."""
    binary = _binary("alertmanager")
    if not TEMPLATES.is_file():
        if os.environ.get("CI") == "true":
            pytest.fail(f"{TEMPLATES} missing: run tools/install-prometheus as root")
        pytest.skip(f"{TEMPLATES} missing: run tools/install-prometheus as root")
    prod = _config("prod").monitoring.alerting
    assert prod.heartbeat is not None
    # Notify at once rather than after the production grouping delays; the heartbeat every HEARTBEAT_SECONDS.
    heartbeat = prod.heartbeat.model_copy(update={"interval": f"{HEARTBEAT_SECONDS}s"})
    alerting = prod.model_copy(update={"group_wait": "0s", "group_interval": "1s", "heartbeat": heartbeat})
    config = alertmanager_config(alerting)
    inbox_url = f"http://127.0.0.1:{inbox.server_port}"
    secrets = tmp_path / "secrets"
    for receiver in config["receivers"]:
        for pagerduty in receiver.get("pagerduty_configs", []):
            pagerduty["url"] = f"{inbox_url}/pagerduty"  # the events API, here
    config = json.loads(json.dumps(config).replace(SECRETS_DIR, str(secrets)))
    (secrets / "hyperstudy-alertmanager-receivers").mkdir(parents=True)
    files = {
        "slack_webhook_url": f"{inbox_url}/slack",
        "pagerduty_routing_key": "routing-key-of-the-test",
        "heartbeat_url": f"{inbox_url}/heartbeat",
    }
    for key, value in files.items():
        (secrets / "hyperstudy-alertmanager-receivers" / key).write_text(value)
    text = yaml.safe_dump(for_debian(config, lambda path: Path(path).read_text()))
    (tmp_path / "alertmanager.yaml").write_text(text)
    port = _free_port()
    log = (tmp_path / "alertmanager.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={tmp_path / 'alertmanager.yaml'}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 15
        while True:
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=1) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert process.poll() is None, (tmp_path / "alertmanager.log").read_text()
            assert time.monotonic() < deadline, "alertmanager did not become ready"
            time.sleep(0.1)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
        log.close()


def _fire(url: str, alertname: str, severity: str, ends_at: str | None = None) -> None:
    alert: dict = {"labels": {"alertname": alertname, "severity": severity, "namespace": "hyperstudy"}}
    if ends_at is not None:
        alert["endsAt"] = ends_at
    body = json.dumps([alert])
    request = urllib.request.Request(
        f"{url}/api/v2/alerts", data=body.encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 200


def _delivered(inbox: ThreadingHTTPServer, alertname: str, settle: float) -> set[str]:
    """The inbox paths that received `alertname`, once `settle` seconds pass without anything new."""
    deadline, seen = time.monotonic() + settle, -1
    while True:
        got = {path for path, body in list(inbox.received) if alertname in json.dumps(body)}
        if len(got) != seen:
            seen, deadline = len(got), time.monotonic() + settle
        if time.monotonic() > deadline:
            return got
        time.sleep(0.1)


def test_alerts_reach_the_pager_and_the_chat_by_severity(alertmanager, inbox):
    _fire(alertmanager, "HyperStudyContainerOOMKilled", "critical")
    _fire(alertmanager, "HyperStudyMemoryNearLimit", "warning")
    _fire(alertmanager, "InfoInhibitor", "none")
    assert _delivered(inbox, "HyperStudyContainerOOMKilled", 3.0) == {"/pagerduty", "/slack"}
    # Fired with the first: by now delivered, or not at all.
    assert _delivered(inbox, "HyperStudyMemoryNearLimit", 0.5) == {"/slack"}
    assert _delivered(inbox, "InfoInhibitor", 0.5) == set()
    pages = [body for path, body in inbox.received if path == "/pagerduty"]
    # The routing key reached PagerDuty from its file: the config itself never held it.
    assert pages and all(body["routing_key"] == "routing-key-of-the-test" for body in pages)


def _posts(inbox: ThreadingHTTPServer, path: str) -> list[float]:
    """When each POST to `path` arrived (monotonic seconds)."""
    return [at for p, at in list(inbox.arrivals) if p == path]  # type: ignore[attr-defined]


def test_the_watchdog_beats_the_dead_mans_switch_until_it_stops(alertmanager, inbox):
    """The Watchdog reaches the heartbeat URL (read from its mounted file) and nothing else, at once and then at least
    once per interval; once it stops firing (Prometheus, its rules or the path to Alertmanager gone) the POSTs stop:
    no resolved notification, which the dead-man's switch would count as one more heartbeat."""
    start = time.monotonic()
    _fire(alertmanager, WATCHDOG, "none")
    deadline = start + 4 * HEARTBEAT_SECONDS + 3
    while time.monotonic() < deadline and len(_posts(inbox, "/heartbeat")) < 4:
        time.sleep(0.1)
    beats = _posts(inbox, "/heartbeat")
    assert len(beats) >= 4, f"{len(beats)} heartbeats in {time.monotonic() - start:.1f} s"
    assert beats[0] - start < 1.5, "the first one at once (group_wait 0s)"
    gaps = [b - a for a, b in itertools.pairwise(beats)]
    assert all(gap <= HEARTBEAT_SECONDS + 0.5 for gap in gaps), gaps
    assert _delivered(inbox, WATCHDOG, 0.5) == {"/heartbeat"}, "never a person's receiver"
    bodies = [body for path, body in inbox.received if path == "/heartbeat"]
    assert all(body["status"] == "firing" and body["commonLabels"]["alertname"] == WATCHDOG for body in bodies)

    # The Watchdog stops: Alertmanager sees it resolved.
    resolved_at = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    _fire(alertmanager, WATCHDOG, "none", ends_at=resolved_at)
    time.sleep(1.0)  # a tick already under way may still send
    count = len(_posts(inbox, "/heartbeat"))
    time.sleep(2 * HEARTBEAT_SECONDS + 1)
    assert len(_posts(inbox, "/heartbeat")) == count, "the heartbeat went on after the Watchdog stopped"
    assert all(body["status"] == "firing" for path, body in inbox.received if path == "/heartbeat")
