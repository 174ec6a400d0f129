"""Helm releases as a policy sees them: the pods a chart will run are not resources of the stack, so they are read
from the release's values through the chart's pod inventory (`sizing.facts.charts`), and Alertmanager's routing tree is
walked to see whether an alert of each severity reaches a receiver that notifies someone.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from pulumi_policy import ReportViolation, ResourceValidationArgs

from policy.kube import get, items, resources_problems, show
from sizing.config.alerting import PAGED_SEVERITIES
from sizing.facts.charts import CHARTS, Chart, ResourceFlags

HELM_RELEASE = "kubernetes:helm.sh/v3:Release"
KUBE_PROMETHEUS_STACK = "kube-prometheus-stack"
# The receiver fields that notify someone (Alertmanager's `<integration>_configs`).
_INTEGRATION = re.compile(r"^[a-z]+_configs$")


def _release(args: ResourceValidationArgs) -> tuple[str, str] | None:
    """(`Release <namespace>/<name>`, chart) of a Helm release; None for every other resource."""
    if args.resource_type != HELM_RELEASE:
        return None
    name = args.props.get("name") or args.name
    return f"Release {args.props.get('namespace') or 'default'}/{name}", str(args.props.get("chart") or "")


def _chart(chart: str) -> Chart | None:
    # `repo/chart` and `oci://.../chart` name the same chart as its bare name.
    return CHARTS.get(chart.rstrip("/").rsplit("/", 1)[-1])


def check_helm_pods_sized(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """Every pod a Helm release runs has memory requests and limits in its values, as the chart inventory lists
    them, the values that would add pods the inventory does not size are off, and those the program relies on are on
    (cert-manager's startup API check, which the Issuer waits for)."""
    found = _release(args)
    if found is None:
        return
    obj, name = found
    chart = _chart(name)
    if chart is None:
        known = ", ".join(sorted(CHARTS))
        report_violation(
            f"{obj}: chart {name or '(none)'} has no pod inventory in sizing/facts/charts.py (known: {known}), so its "
            "pods' "
            "requests and limits cannot be checked: add it there and size its pods in the plan"
        )
        return
    values = args.props.get("values")
    for container in chart.containers():
        if container.resources is not None:
            resources = get(values, *container.resources)
        else:
            assert container.resource_flags is not None
            resources = _flag_resources(items(get(values, *container.resource_flags.path)), container.resource_flags)
        for problem in resources_problems(resources):
            report_violation(f"{obj} {container.key} ({container.container}): {problem}")
    for path in chart.off:
        value = get(values, *path)
        if value is not False:
            report_violation(
                f"{obj}: values.{'.'.join(path)} is {show(value)}, not false: it runs pods the plan does not size"
            )
    for path in chart.on:
        value = get(values, *path)
        if value is not True:
            report_violation(
                f"{obj}: values.{'.'.join(path)} is {show(value)}, not true: resources created after the release rely "
                "on it (sizing/facts/charts.py)"
            )


def _flag_resources(args: list[Any], flags: ResourceFlags) -> dict[str, dict[str, str]]:
    """The `resources` a controller's sizing flags amount to (`--<prefix>-request-memory=64Mi` ...)."""
    resources: dict[str, dict[str, str]] = {}
    for arg in args:
        text = str(arg)
        if not text.startswith(f"{flags.prefix}-") or "=" not in text:
            continue
        name, value = text.removeprefix(f"{flags.prefix}-").split("=", 1)
        field, _, resource = name.partition("-")
        section = {"request": "requests", "limits": "limits"}.get(field)
        if section is not None and resource in ("cpu", "memory"):
            resources.setdefault(section, {})[resource] = value
    return resources


# --- Alertmanager's routing, as far as a policy needs it -----------------------------------------------------------

_MATCHER = re.compile(r'^\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*(?:"((?:[^"\\]|\\.)*)"|(\S*))\s*$')


def _matches(matcher: str, labels: Mapping[str, str]) -> bool:
    found = _MATCHER.match(matcher)
    if found is None:
        return False  # Alertmanager refuses the config; the route matches nothing
    name, operator, quoted, bare = found.groups()
    expected = quoted.encode().decode("unicode_escape") if quoted is not None else bare
    value = labels.get(name, "")
    if operator == "=":
        return value == expected
    if operator == "!=":
        return value != expected
    hit = re.fullmatch(expected, value) is not None
    return hit if operator == "=~" else not hit


def _route_matches(route: Any, labels: Mapping[str, str]) -> bool:
    legacy = {str(k): str(v) for k, v in (get(route, "match") or {}).items()}
    legacy_re = {str(k): str(v) for k, v in (get(route, "match_re") or {}).items()}
    return (
        all(_matches(str(m), labels) for m in items(get(route, "matchers")))
        and all(labels.get(k, "") == v for k, v in legacy.items())
        and all(re.fullmatch(v, labels.get(k, "")) for k, v in legacy_re.items())
    )


def routed_receivers(route: Any, labels: Mapping[str, str], inherited: str | None = None) -> Iterator[str]:
    """The receivers an alert with `labels` is sent to by the routing tree under `route` (assumed matching)."""
    receiver = get(route, "receiver") or inherited
    sent = False
    for child in items(get(route, "routes")):
        if _route_matches(child, labels):
            yield from routed_receivers(child, labels, receiver)
            sent = True
            if get(child, "continue") is not True:
                break
    if not sent and receiver is not None:
        yield str(receiver)


def _notifies(receiver: Any) -> bool:
    return any(_INTEGRATION.match(str(key)) and items(value) for key, value in (receiver or {}).items())


def check_alerts_reach_a_person(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
    """A kube-prometheus-stack release whose Alertmanager runs routes critical and warning alerts to a receiver
    with at least one integration: otherwise every alert is dropped (the chart's default receiver is `null`)."""
    found = _release(args)
    if found is None or _chart(found[1]) is not CHARTS.get(KUBE_PROMETHEUS_STACK):
        return
    obj = found[0]
    alertmanager = get(args.props.get("values"), "alertmanager")
    if get(alertmanager, "enabled") is False:
        return
    config = get(alertmanager, "config")
    receivers = {str(get(r, "name")): r for r in items(get(config, "receivers"))}
    for severity in PAGED_SEVERITIES:
        reached = list(routed_receivers(get(config, "route"), {"severity": severity, "alertname": "HyperStudy"}))
        if not any(_notifies(receivers.get(name)) for name in reached):
            where = ", ".join(reached) or "no receiver"
            report_violation(
                f"{obj}: {severity} alerts reach {where}, which notifies no one: configure monitoring.alerting "
                "receivers and route this severity to them"
            )
