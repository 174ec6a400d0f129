"""The Alertmanager configuration of the stack, built from `monitoring.alerting`: receivers, and a route per severity.

For the Alertmanager the program installs, secret values are never in it: each credential is a `*_file` path into
the Secret `RECEIVER_SECRET`, which the program fills from Pulumi secret config and kube-prometheus-stack mounts
into Alertmanager (`alertmanagerSpec.secrets`) at `/etc/alertmanager/secrets/<secret>/<key>`; the config is then
safe to keep in the chart values, the Pulumi state and the offline render. GKE Managed Prometheus' Alertmanager
mounts nothing: its whole config lives in one Secret (`MANAGED_CONFIG_SECRET`), so there the credentials are
inline (`inline_credentials`), and the config only ever travels as a secret. Plain data: no pulumi import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from monitoring.names import WATCHDOG
from sizing.config.alerting import (
    HEARTBEAT_RECEIVER,
    NULL_RECEIVER,
    SEVERITIES,
    AlertingConfig,
    HeartbeatConfig,
    Receiver,
)
from sizing.core.durations import duration_seconds, duration_text

# The Secret holding every receiver's secret values, one key per secret config key.
RECEIVER_SECRET = "hyperstudy-alertmanager-receivers"
# Where the operator mounts each Secret listed in alertmanagerSpec.secrets.
SECRETS_DIR = "/etc/alertmanager/secrets"
# GKE Managed Prometheus reads its Alertmanager config from this Secret (its OperatorConfig's default).
MANAGED_CONFIG_NAMESPACE, MANAGED_CONFIG_SECRET, MANAGED_CONFIG_KEY = "gmp-public", "alertmanager", "alertmanager.yaml"
# How a credential field is written: `field` and the secret config key → the receiver's fields.
Credential = Callable[[str, str], dict[str, str]]
# Alerts that exist to be silent: the heartbeat (unless a dead-man's switch receives it), and kube-prometheus-stack's
# inhibitor of info alerts.
SILENT_ALERTS = (WATCHDOG, "InfoInhibitor")

# What a person reads: the summary in the title, then each alert's description and runbook.
_TITLE = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.namespace }})"
_TEXT = (
    "{{ range .Alerts }}{{ .Annotations.summary }}\n{{ .Annotations.description }}\n"
    "Runbook: {{ .Annotations.runbook_url }}\n\n{{ end }}"
)


def secret_file(key: str) -> str:
    """The path Alertmanager reads the secret config key `key` from."""
    return f"{SECRETS_DIR}/{RECEIVER_SECRET}/{key}"


def from_files(field: str, key: str) -> dict[str, str]:
    """A credential as a file in the mounted receivers' Secret (`api_url_file: /etc/alertmanager/secrets/...`)."""
    return {f"{field}_file": secret_file(key)}


def inline_credentials(values: Mapping[str, str]) -> Credential:
    """Credentials written into the config itself, from the secret values by key (for an Alertmanager that mounts
    no Secret): the result is a secret and must only be stored as one."""
    return lambda field, key: {field: values[key]}


def _integrations(receiver: Receiver, credential: Credential) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    if receiver.slack is not None:
        found["slack_configs"] = [
            {
                **credential("api_url", receiver.slack.api_url_secret),
                "channel": receiver.slack.channel,
                "send_resolved": True,
                "title": _TITLE,
                "text": _TEXT,
            }
        ]
    if receiver.pagerduty is not None:
        found["pagerduty_configs"] = [
            {
                **credential("routing_key", receiver.pagerduty.routing_key_secret),
                "send_resolved": True,
                "description": _TITLE,
            }
        ]
    if receiver.webhook is not None:
        found["webhook_configs"] = [{**credential("url", receiver.webhook.url_secret), "send_resolved": True}]
    if receiver.email is not None:
        email = receiver.email
        config: dict[str, Any] = {
            "to": email.to,
            "from": email.from_,
            "smarthost": email.smarthost,
            "require_tls": email.require_tls,
            "send_resolved": True,
            "headers": {"Subject": _TITLE},
        }
        if email.auth_username is not None and email.auth_password_secret is not None:
            config |= {
                "auth_username": email.auth_username,
                "auth_password_file": secret_file(email.auth_password_secret),
            }
        found["email_configs"] = [config]
    return found


def _heartbeat(heartbeat: HeartbeatConfig, credential: Credential) -> dict[str, Any]:
    """The dead-man's switch as a webhook. Never `send_resolved`: a resolved notification is a POST like any other,
    which the service would count as a heartbeat at the very moment the Watchdog stopped."""
    return {"webhook_configs": [{**credential("url", heartbeat.url_secret), "send_resolved": False}]}


def _heartbeat_route(heartbeat: HeartbeatConfig) -> dict[str, Any]:
    """The Watchdog to the dead-man's switch at once, and again at least once per `interval`.

    Alertmanager re-sends an unchanged group only on a `group_interval` tick, and only if `repeat_interval` has passed
    since the last notification was logged, which is a little after the previous tick: with both at the same value
    it re-sends every second tick (Alertmanager 0.25, measured). Both are half the interval, so a POST goes out every
    interval (or every half, where the check uses the tick's time); `repeat_interval` below `group_interval` would
    do the same but makes newer Alertmanagers log a warning on every config load."""
    half = duration_text(max(duration_seconds(heartbeat.interval) / 2, 0.001))
    return {
        "receiver": HEARTBEAT_RECEIVER,
        "matchers": [f'alertname = "{WATCHDOG}"'],
        "group_by": ["alertname"],
        "group_wait": "0s",
        "group_interval": half,
        "repeat_interval": half,
    }


def _routes(alerting: AlertingConfig) -> list[dict[str, Any]]:
    routes: list[dict[str, Any]] = []
    if alerting.heartbeat is not None:
        routes.append(_heartbeat_route(alerting.heartbeat))
    routes += [
        {"receiver": NULL_RECEIVER, "matchers": [f'alertname = "{name}"']}
        for name in SILENT_ALERTS
        if not (name == WATCHDOG and alerting.heartbeat is not None)
    ]
    for severity in SEVERITIES:
        names = alerting.routes.get(severity, [])
        for i, name in enumerate(names):
            # Every receiver of a severity is notified: all but the last route let matching go on.
            route: dict[str, Any] = {"receiver": name, "matchers": [f'severity = "{severity}"']}
            if i < len(names) - 1:
                route["continue"] = True
            routes.append(route)
    return routes


def alertmanager_config(alerting: AlertingConfig, credential: Credential = from_files) -> dict[str, Any]:
    """alertmanager.yaml: the Watchdog to the heartbeat receiver (with `heartbeat`), a route per severity to its
    receivers; what matches none (an unrouted severity, an alert without one) goes to `null`, which the plan and the
    policy pack report for critical and warning. Credentials are files in the mounted receivers' Secret unless
    `credential` says otherwise."""
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": NULL_RECEIVER,
            "group_by": list(alerting.group_by),
            "group_wait": alerting.group_wait,
            "group_interval": alerting.group_interval,
            "repeat_interval": alerting.repeat_interval,
            "routes": _routes(alerting),
        },
        "receivers": [
            {"name": NULL_RECEIVER},
            *({"name": name, **_integrations(receiver, credential)} for name, receiver in alerting.receivers.items()),
            *(
                [{"name": HEARTBEAT_RECEIVER, **_heartbeat(alerting.heartbeat, credential)}]
                if alerting.heartbeat is not None
                else []
            ),
        ],
        # While a critical alert fires, the warning and info ones of the same alert and namespace are noise.
        "inhibit_rules": [
            {
                "source_matchers": ['severity = "critical"'],
                "target_matchers": ['severity =~ "warning|info"'],
                "equal": ["namespace", "alertname"],
            },
            {
                "source_matchers": ['severity = "warning"'],
                "target_matchers": ['severity = "info"'],
                "equal": ["namespace", "alertname"],
            },
            {
                "source_matchers": ['alertname = "InfoInhibitor"'],
                "target_matchers": ['severity = "info"'],
                "equal": ["namespace"],
            },
        ],
    }
