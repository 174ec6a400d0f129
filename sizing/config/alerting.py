"""Who the alerts reach: the stack's Alertmanager receivers and how alerts are routed to them by severity.

Config only, no Alertmanager syntax (that is `monitoring.alertmanager`). A receiver never holds a secret
value: every credential field names a Pulumi config key of the project (`api_url_secret: slack_webhook_url`) that
must be set with `pulumi config set --secret`, so the stack file holds ciphertext only and the rendered chart values
hold a file path into a mounted Secret. The heartbeat (a dead-man's switch outside the cluster that pages when the
always-firing Watchdog stops arriving) names its URL the same way.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal, get_args

from pydantic import BeforeValidator, Field, model_validator

from sizing.core.errors import PathError
from sizing.core.model import Duration, Model

Severity = Literal["critical", "warning", "info"]
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
# Severities that must reach a person for the monitoring to be worth running: every HyperStudy alert uses one of
# them by default, and so do kube-prometheus-stack's own alerts that mean an outage.
PAGED_SEVERITIES: tuple[Severity, ...] = ("critical", "warning")

# A Pulumi config key name (the part after `hyperstudy-infra:`): a URL, a token or anything with `/`, `:` or spaces
# in it is a value, not a key, and is refused before it can be committed.
_SECRET_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
# Alertmanager reserves nothing, but `null` is the receiver the program routes the alerts meant for no one to, and
# `heartbeat` the one it sends the Watchdog to when `heartbeat` is configured.
NULL_RECEIVER = "null"
HEARTBEAT_RECEIVER = "heartbeat"
RESERVED_RECEIVERS = (NULL_RECEIVER, HEARTBEAT_RECEIVER)


def _secret_key(value: object) -> object:
    if isinstance(value, str) and not _SECRET_KEY.fullmatch(value):
        raise ValueError(
            "must name a Pulumi config key set with `pulumi config set --secret <key> <value>` "
            "(letters, digits, _ and -), not hold the value itself"
        )
    return value


SecretKey = Annotated[str, BeforeValidator(_secret_key)]


class SlackReceiver(Model):
    """A Slack incoming webhook."""

    channel: str = Field(pattern=r"^[#@]?[-_.a-z0-9]{1,80}$", description="channel the webhook posts to")
    api_url_secret: SecretKey = Field(description="secret config key holding the webhook URL")


class PagerDutyReceiver(Model):
    """A PagerDuty service (Events API v2)."""

    routing_key_secret: SecretKey = Field(description="secret config key holding the integration (routing) key")


class WebhookReceiver(Model):
    """A generic webhook (Alertmanager's JSON payload)."""

    url_secret: SecretKey = Field(description="secret config key holding the URL (it often embeds a token)")


class EmailReceiver(Model):
    """E-mail through an SMTP relay."""

    to: str = Field(pattern=r"^[^@\s]+@[^@\s]+$", description="recipient address")
    from_: str = Field(alias="from", pattern=r"^[^@\s]+@[^@\s]+$", description="sender address")
    smarthost: str = Field(pattern=r"^[-.a-z0-9]+:[0-9]{1,5}$", description="SMTP relay, host:port")
    auth_username: str | None = Field(None, min_length=1, description="SMTP user (None: the relay needs no login)")
    auth_password_secret: SecretKey | None = Field(None, description="secret config key holding the SMTP password")
    require_tls: bool = Field(True, description="refuse to send without STARTTLS")

    @model_validator(mode="after")
    def _login_is_complete(self) -> EmailReceiver:
        if (self.auth_username is None) != (self.auth_password_secret is None):
            raise PathError("auth_password_secret", "auth_username and auth_password_secret go together")
        return self


class HeartbeatConfig(Model):
    """A dead-man's switch: a service outside the cluster (healthchecks.io, Dead Man's Snitch, a pager's heartbeat
    URL) that Alertmanager POSTs the always-firing Watchdog to every `interval`, and that pages when the POSTs stop:
    Prometheus, Alertmanager, the nodes or the NAT gone."""

    url_secret: SecretKey = Field(description="secret config key holding the URL (it embeds the check's token)")
    interval: Duration = Field(
        "1m",
        description="the heartbeat is sent at least once per interval: the service's period (plus its grace) must be "
        "longer",
    )

    @model_validator(mode="after")
    def _interval_is_not_zero(self) -> HeartbeatConfig:
        if not re.search(r"[1-9]", self.interval):
            raise PathError("interval", "must be longer than 0 (a heartbeat that is never sent pages all the time)")
        return self


class Receiver(Model):
    """One Alertmanager receiver: one or more integrations notified together."""

    slack: SlackReceiver | None = Field(None, description="post to a Slack channel")
    pagerduty: PagerDutyReceiver | None = Field(None, description="page through PagerDuty")
    webhook: WebhookReceiver | None = Field(None, description="POST to a webhook")
    email: EmailReceiver | None = Field(None, description="send an e-mail")

    @model_validator(mode="after")
    def _notifies_someone(self) -> Receiver:
        if not self.integrations():
            raise PathError("", "names no integration (slack, pagerduty, webhook or email): it would notify no one")
        return self

    def integrations(self) -> dict[str, Model]:
        """The configured integrations by kind."""
        found = {kind: getattr(self, kind) for kind in ("slack", "pagerduty", "webhook", "email")}
        return {kind: value for kind, value in found.items() if value is not None}

    def secret_keys(self) -> tuple[str, ...]:
        """Every secret config key the receiver reads."""
        keys = []
        for integration in self.integrations().values():
            for field in type(integration).model_fields:
                value = getattr(integration, field)
                if field.endswith("_secret") and value is not None:
                    keys.append(value)
        return tuple(keys)


_RECEIVER_NAME = re.compile(r"[a-z][-a-z0-9]{0,62}")


class AlertingConfig(Model):
    """The receivers, and which of them each severity reaches."""

    receivers: dict[str, Receiver] = Field(default_factory=dict, description="receivers by name")
    routes: dict[Severity, list[str]] = Field(
        default_factory=dict, description="severity → receivers notified (every alert of that severity reaches each)"
    )
    group_by: list[str] = Field(
        default_factory=lambda: ["alertname", "namespace"], description="labels one notification groups alerts by"
    )
    group_wait: Duration = Field("30s", description="wait for more alerts of a new group before notifying")
    group_interval: Duration = Field("5m", description="wait before notifying about new alerts of a known group")
    repeat_interval: Duration = Field("4h", description="re-notify a still-firing group after this long")
    heartbeat: HeartbeatConfig | None = Field(
        None, description="dead-man's switch the Watchdog is sent to (None: the Watchdog reaches no one)"
    )

    @model_validator(mode="after")
    def _routes_name_receivers(self) -> AlertingConfig:
        for name in self.receivers:
            if name in RESERVED_RECEIVERS or not _RECEIVER_NAME.fullmatch(name):
                reserved = " and ".join(f"'{r}'" for r in RESERVED_RECEIVERS)
                problem = f"name must be a lowercase label (a-z, 0-9, -) other than {reserved}"
                raise PathError(f"receivers.{name}", problem)
        routed: set[str] = set()
        for severity, names in self.routes.items():
            if not names:
                raise PathError(f"routes.{severity}", "lists no receiver (leave the severity out instead)")
            if len(set(names)) != len(names):
                raise PathError(f"routes.{severity}", "names a receiver twice")
            for name in names:
                if name not in self.receivers:
                    known = ", ".join(sorted(self.receivers)) or "none"
                    raise PathError(f"routes.{severity}", f"unknown receiver {name!r} (receivers: {known})")
            routed.update(names)
        for name in self.receivers:
            if name not in routed:
                raise PathError(f"receivers.{name}", "is routed from no severity (add it under routes)")
        return self

    def secret_keys(self) -> tuple[str, ...]:
        """Every secret config key the receivers and the heartbeat read, sorted, each once."""
        keys = {key for r in self.receivers.values() for key in r.secret_keys()}
        if self.heartbeat is not None:
            keys.add(self.heartbeat.url_secret)
        return tuple(sorted(keys))

    def unrouted(self) -> tuple[Severity, ...]:
        """The severities that must reach a person but reach no receiver."""
        return tuple(severity for severity in PAGED_SEVERITIES if severity not in self.routes)
