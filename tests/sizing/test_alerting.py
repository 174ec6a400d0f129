"""Who alerts reach: receivers, routes by severity, secrets only by Pulumi secret key; the plan says loudly when
the installed Alertmanager would notify no one; one rule evaluator."""

from __future__ import annotations

from typing import Any

import pytest

from sizing.core.errors import ConfigError
from sizing.plan.build import build_plan

NS = "hyperstudy-infra"
CIPHERTEXT = {"secure": "v1:abc:def"}


@pytest.fixture(autouse=True)
def _control_plane_restricted(prod_values: dict[str, Any]) -> None:
    """Prod with authorized networks, so the plan's warnings here are the alerting ones (the cluster's own warning is
    tests/sizing/test_maintenance.py's)."""
    prod_values["cluster"]["master_authorized_networks"] = ["203.0.113.0/24"]


def _refusal(parse, values: dict[str, Any]) -> ConfigError:
    with pytest.raises(ConfigError) as err:
        parse(values)
    return err.value


def _alerting(values: dict[str, Any]) -> dict[str, Any]:
    return values["monitoring"]["alerting"]


def test_prod_routes_critical_to_the_pager_and_every_severity_to_chat(parse, prod_values) -> None:
    alerting = parse(prod_values).monitoring.alerting
    assert alerting.routes == {"critical": ["oncall", "team-chat"], "warning": ["team-chat"], "info": ["team-chat"]}
    assert alerting.secret_keys() == ("heartbeat_url", "pagerduty_routing_key", "slack_webhook_url")
    assert alerting.unrouted() == ()
    assert alerting.heartbeat is not None and alerting.heartbeat.url_secret == "heartbeat_url"
    assert alerting.heartbeat.interval == "1m"


def test_secrets_given_as_ciphertext_are_held_and_silence_the_warning(parse, prod_values) -> None:
    prod_values |= {"pagerduty_routing_key": CIPHERTEXT, "slack_webhook_url": CIPHERTEXT, "heartbeat_url": CIPHERTEXT}
    config = parse(prod_values)
    assert config.missing_secrets() == ()
    assert build_plan(config, "prod").warnings == ()


def test_missing_secrets_are_warned_about_by_name(parse, prod_values) -> None:
    prod_values |= {"slack_webhook_url": CIPHERTEXT, "heartbeat_url": CIPHERTEXT}
    warnings = build_plan(parse(prod_values), "prod").warnings
    assert len(warnings) == 1
    assert warnings[0].startswith(f"{NS}:pagerduty_routing_key: secret not set")
    assert "pulumi config set --secret pagerduty_routing_key" in warnings[0]


def test_a_secret_in_plaintext_is_refused(parse, prod_values) -> None:
    prod_values["slack_webhook_url"] = "https://hooks.slack.com/services/T000/B000/XXXX"
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:slack_webhook_url"
    assert "plaintext" in err.problem and "pulumi config set --secret" in err.problem


def test_a_secret_value_in_place_of_its_key_is_refused(parse, prod_values) -> None:
    _alerting(prod_values)["receivers"]["team-chat"]["slack"]["api_url_secret"] = "https://hooks.slack.com/x"
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:monitoring.alerting.receivers.team-chat.slack.api_url_secret"
    assert err.problem.startswith("must name a Pulumi config key")


def test_a_secret_no_receiver_reads_is_an_unknown_key(parse, prod_values) -> None:
    prod_values["old_webhook"] = CIPHERTEXT
    err = _refusal(parse, prod_values)
    assert (err.key, err.problem) == (
        f"{NS}:old_webhook",
        "unknown key (a secret no receiver of monitoring.alerting names)",
    )


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (
            lambda a: a["routes"].update(warning=["team-chat", "pager"]),
            "monitoring.alerting.routes.warning",
            "unknown receiver 'pager' (receivers: oncall, team-chat)",
        ),
        (lambda a: a["routes"].update(info=[]), "monitoring.alerting.routes.info", None),
        (
            lambda a: a["routes"].update(critical=["team-chat"]),
            "monitoring.alerting.receivers.oncall",
            "is routed from no severity (add it under routes)",
        ),
        (lambda a: a["routes"].update(fatal=["oncall"]), "monitoring.alerting.routes.fatal", None),
        (
            lambda a: a["receivers"].update(quiet={}),
            "monitoring.alerting.receivers.quiet",
            "names no integration (slack, pagerduty, webhook or email): it would notify no one",
        ),
        (
            lambda a: a["receivers"].update(null={"webhook": {"url_secret": "hook"}}),
            "monitoring.alerting.receivers.null",
            None,
        ),
        (
            lambda a: a["receivers"].update(
                mail={"email": {"to": "a@b.org", "from": "c@d.org", "smarthost": "smtp:587", "auth_username": "u"}}
            ),
            "monitoring.alerting.receivers.mail.email.auth_password_secret",
            "auth_username and auth_password_secret go together",
        ),
    ],
)
def test_routing_refusals_name_their_key(parse, prod_values, change, key, problem) -> None:
    change(_alerting(prod_values))
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:{key}"
    if problem is not None:
        assert err.problem == problem


def test_receivers_need_the_alertmanager_the_program_installs(parse, prod_values) -> None:
    prod_values["monitoring"]["install_stack"] = False
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:monitoring.alerting"


def test_an_installed_stack_without_receivers_says_so_loudly(parse, prod_values) -> None:
    del prod_values["monitoring"]["alerting"]
    warnings = build_plan(parse(prod_values), "prod").warnings
    assert len(warnings) == 1 and "reaches no one" in warnings[0]


def test_unrouted_paged_severities_are_warned_about(parse, prod_values) -> None:
    prod_values |= {"pagerduty_routing_key": CIPHERTEXT, "slack_webhook_url": CIPHERTEXT, "heartbeat_url": CIPHERTEXT}
    _alerting(prod_values)["routes"] = {"critical": ["oncall", "team-chat"]}
    assert build_plan(parse(prod_values), "prod").warnings == (
        f"{NS}:monitoring.alerting.routes: warning alerts reach no receiver",
    )


def test_one_rule_evaluator_by_default(parse, prod_values) -> None:
    monitoring = prod_values["monitoring"]
    assert parse(prod_values).monitoring.prometheus_operator is True
    # A stack on Managed Prometheus no longer ships the PrometheusRule beside its Rules by default.
    monitoring.update(managed_prometheus=True, install_stack=False)
    del monitoring["alerting"]
    config = parse(prod_values).monitoring
    assert (config.managed_prometheus, config.prometheus_operator) == (True, False)
    monitoring["prometheus_operator"] = True
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:monitoring.prometheus_operator"
    assert "every alert would fire twice" in err.problem


# --- The heartbeat: the Watchdog to a dead-man's switch. ---


def test_without_a_heartbeat_the_plan_warns_that_silence_would_go_unnoticed(parse, prod_values) -> None:
    prod_values |= {"pagerduty_routing_key": CIPHERTEXT, "slack_webhook_url": CIPHERTEXT}
    del _alerting(prod_values)["heartbeat"]
    config = parse(prod_values)
    assert config.secret_keys() == ("pagerduty_routing_key", "slack_webhook_url")
    (warning,) = build_plan(config, "prod").warnings
    assert warning.startswith(f"{NS}:monitoring.alerting.heartbeat: no dead-man's switch, so if Prometheus")
    assert "heartbeat: {url_secret: <key>}" in warning


def test_the_heartbeat_url_is_a_secret_like_any_receivers(parse, prod_values) -> None:
    # Not set yet: the plan names it, as it does a receiver's.
    prod_values |= {"pagerduty_routing_key": CIPHERTEXT, "slack_webhook_url": CIPHERTEXT}
    (warning,) = build_plan(parse(prod_values), "prod").warnings
    assert warning.startswith(f"{NS}:heartbeat_url: secret not set")
    assert "pulumi config set --secret heartbeat_url" in warning
    # In plaintext: refused before it can be committed.
    prod_values["heartbeat_url"] = "https://hc-ping.com/0f6c1c5e-5b3a-4a4e-9d4c-2d8f6f0e7a11"
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:heartbeat_url" and "plaintext" in err.problem
    # The URL itself in place of its key: refused too.
    _alerting(prod_values)["heartbeat"]["url_secret"] = "https://hc-ping.com/0f6c1c5e"
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:monitoring.alerting.heartbeat.url_secret"


@pytest.mark.parametrize(
    ("change", "key", "problem"),
    [
        (
            lambda a: a["heartbeat"].update(interval="0s"),
            "monitoring.alerting.heartbeat.interval",
            "must be longer than 0 (a heartbeat that is never sent pages all the time)",
        ),
        (lambda a: a["heartbeat"].update(interval="1 minute"), "monitoring.alerting.heartbeat.interval", None),
        (lambda a: a["heartbeat"].update(url="https://hc-ping.com/x"), "monitoring.alerting.heartbeat.url", None),
        (
            lambda a: a["receivers"].update(heartbeat={"webhook": {"url_secret": "hook"}}),
            "monitoring.alerting.receivers.heartbeat",
            "name must be a lowercase label (a-z, 0-9, -) other than 'null' and 'heartbeat'",
        ),
    ],
)
def test_heartbeat_refusals_name_their_key(parse, prod_values, change, key, problem) -> None:
    change(_alerting(prod_values))
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:{key}"
    if problem is not None:
        assert err.problem == problem


def test_a_heartbeat_needs_an_alertmanager_the_program_configures(parse, prod_values) -> None:
    monitoring = prod_values["monitoring"]
    monitoring["install_stack"] = False
    monitoring["alerting"] = {"heartbeat": {"url_secret": "heartbeat_url"}}
    err = _refusal(parse, prod_values)
    assert err.key == f"{NS}:monitoring.alerting"


@pytest.mark.parametrize("threshold", [1, 1.5])
def test_a_workload_unavailable_ratio_that_fires_on_a_healthy_workload_is_refused(parse, prod_values, threshold):
    prod_values["monitoring"]["alerts"] = {"workload_unavailable": {"threshold": threshold, "for": "2m"}}
    err = _refusal(parse, prod_values)
    assert (err.key, err.problem) == (
        f"{NS}:monitoring.alerts.workload_unavailable.threshold",
        "must be below 1 (a ratio of the desired replicas)",
    )
