"""Shared dashboard defaults: identity, variables, units, thresholds, selectors, typed panel factories, grid layout.

A dashboard's uid and title come from the stack's namespace (`<namespace>-memory`, ...), so two stacks sharing one
Grafana keep their own dashboards, and the links between dashboards follow the uids. Every panel and every query
reads the `datasource` template variable. Selectors are the rules' own (`monitoring.selectors`), with
the namespace replaced by the `namespace` variable, whose default is the stack's `kubernetes.namespace`. Panels
are placed by the SDK's grid layout (rows, then panels left to right) and numbered here, so the same input always
gives the same JSON.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from grafana_foundation_sdk.builders import common as common_builder, dashboard, gauge, prometheus, stat, timeseries
from grafana_foundation_sdk.cog import builder as cogbuilder
from grafana_foundation_sdk.models import common as common_model, dashboard as dashboard_model

from monitoring import names
from monitoring.selectors import Selectors, build_selectors
from sizing.config.kubernetes import KubernetesConfig
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError
from sizing.observe.promql import eq, selector
from sizing.plan.types import Plan

# --- Identity: which dashboards there are, and their uid and title in a stack ---
# uid suffix -> title, in the order the dashboards are listed and linked.
TITLES: dict[str, str] = {
    "memory": "Memory Monitoring",
    "capacity": "Capacity Planning",
    "cost": "Cost Analysis",
}
TITLE_PREFIX = "HyperStudy / "
# The namespace whose titles carry no `(<namespace>)`: the config default, prod's namespace.
UNQUALIFIED_NAMESPACE: str = KubernetesConfig.model_fields["namespace"].default
# Grafana refuses a dashboard uid longer than this.
MAX_UID_LENGTH = 40


def dashboard_uid(config: StackConfig, slug: str) -> str:
    """`<kubernetes.namespace>-<slug>`, e.g. `hyperstudy-memory`: unique per stack in a shared Grafana."""
    uid = f"{config.kubernetes.namespace}-{slug}"
    if len(uid) > MAX_UID_LENGTH:
        longest = max(len(s) for s in TITLES) + 1
        raise ConfigError(
            config.key("kubernetes.namespace"),
            f"at most {MAX_UID_LENGTH - longest} characters: the dashboard uid {uid!r} is longer than Grafana's "
            f"{MAX_UID_LENGTH}",
        )
    return uid


def dashboard_title(config: StackConfig, slug: str) -> str:
    """`HyperStudy / <title>`, with ` (<namespace>)` for a stack outside the default namespace."""
    namespace = config.kubernetes.namespace
    suffix = "" if namespace == UNQUALIFIED_NAMESPACE else f" ({namespace})"
    return f"{TITLE_PREFIX}{TITLES[slug]}{suffix}"


def dashboard_url(uid: str) -> str:
    """The dashboard's path in Grafana (Grafana prepends its sub-path, if any)."""
    return f"/d/{uid}"


# --- Dashboard-wide defaults ---
TAGS: tuple[str, ...] = ("hyperstudy", "generated")
REFRESH = "1m"
TIMEZONE = "utc"
REFRESH_INTERVALS: tuple[str, ...] = ("30s", "1m", "5m", "15m", "30m", "1h")

DATASOURCE_VARIABLE = "datasource"
NAMESPACE_VARIABLE = "namespace"
DATASOURCE = dashboard_model.DataSourceRef(type_val="prometheus", uid="${" + DATASOURCE_VARIABLE + "}")
NAMESPACE = "$" + NAMESPACE_VARIABLE
RATE_INTERVAL = "$__rate_interval"


class Unit:
    """Grafana unit ids used by the dashboards."""

    BYTES = "bytes"
    RATIO = "percentunit"
    USD = "currencyUSD"
    COUNT = "short"


class Color:
    GREEN = "green"
    YELLOW = "yellow"
    ORANGE = "orange"
    RED = "red"
    BLUE = "blue"


# Memory efficiency (Σ working set ÷ Σ requests) bands: below 40 % the requests are mostly idle reservation.
EFFICIENCY_STEPS: tuple[tuple[float, str], ...] = ((0.4, Color.ORANGE), (0.6, Color.GREEN))


# --- PromQL: the rules' selectors, read through the dashboard's namespace variable ---
MEMORY = eq("resource", "memory")


def dashboard_selectors(config: StackConfig, plan: Plan) -> Selectors:
    """The selectors the rules use, with `namespace="$namespace"` instead of the stack's namespace."""
    return dataclasses.replace(build_selectors(config, plan), namespace=NAMESPACE)


def over_rate_interval(selector_text: str) -> str:
    """A range selector over Grafana's `$__rate_interval`, the only window `rate()`/`increase()` get here."""
    return f"{selector_text}[{RATE_INTERVAL}]"


# --- Queries and thresholds ---
@dataclass(frozen=True)
class Query:
    """One PromQL target: the expression and its legend."""

    expr: str
    legend: str


def _target(query: Query, ref_id: str, instant: bool) -> prometheus.Dataquery:
    target = prometheus.Dataquery().expr(query.expr).legend_format(query.legend).ref_id(ref_id).datasource(DATASOURCE)
    return target.instant() if instant else target.range()


def _ref_id(index: int) -> str:
    return chr(ord("A") + index)


def thresholds(base: str, *steps: tuple[float, str]) -> dashboard.ThresholdsConfig:
    """Absolute thresholds: `base` below the first step, then each (value, color) upwards (sorted by value)."""
    by_value = {float(value): color for value, color in steps}  # a repeated value: the later color wins
    ordered = sorted(by_value.items())
    return (
        dashboard.ThresholdsConfig()
        .mode(dashboard_model.ThresholdsMode.ABSOLUTE)
        .steps(
            [
                dashboard_model.Threshold(value=None, color=base),
                *(dashboard_model.Threshold(value=v, color=c) for v, c in ordered),
            ]
        )
    )


def efficiency_thresholds() -> dashboard.ThresholdsConfig:
    return thresholds(Color.RED, *EFFICIENCY_STEPS)


# --- Panel factories: typed builders with the shared defaults ---


def _last_value() -> common_builder.ReduceDataOptions:
    return common_builder.ReduceDataOptions().calcs(["lastNotNull"]).values(False)


def timeseries_panel(
    title: str,
    description: str,
    unit: str,
    queries: Sequence[Query],
    *,
    width: int = 12,
    height: int = 8,
    threshold_config: dashboard.ThresholdsConfig | None = None,
    threshold_lines: bool = False,
    stacked: bool = False,
    bars: bool = False,
    min_value: float | None = None,
) -> timeseries.Panel:
    """A time series: lines (or bars), legend as a table with last and max, thresholds optionally drawn dashed."""
    panel = (
        timeseries.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .line_width(1)
        .fill_opacity(40 if stacked or bars else 10)
        .draw_style(common_model.GraphDrawStyle.BARS if bars else common_model.GraphDrawStyle.LINE)
        .show_points(common_model.VisibilityMode.NEVER)
        .span_nulls(False)
        .stacking(
            common_builder.StackingConfig().mode(
                common_model.StackingMode.NORMAL if stacked else common_model.StackingMode.NONE
            )
        )
        .legend(
            common_builder.VizLegendOptions()
            .display_mode(common_model.LegendDisplayMode.TABLE)
            .placement(common_model.LegendPlacement.BOTTOM)
            .show_legend(True)
            .calcs(["lastNotNull", "max"])
        )
        .tooltip(
            common_builder.VizTooltipOptions()
            .mode(common_model.TooltipDisplayMode.MULTI)
            .sort(common_model.SortOrder.DESCENDING)
        )
        .thresholds_style(
            common_builder.GraphThresholdsStyleConfig().mode(
                common_model.GraphThresholdsStyleMode.DASHED
                if threshold_lines
                else common_model.GraphThresholdsStyleMode.OFF
            )
        )
    )
    if threshold_config is not None:
        panel = panel.thresholds(threshold_config)
    if min_value is not None:
        panel = panel.min(min_value)
    for index, query in enumerate(queries):
        panel = panel.with_target(_target(query, _ref_id(index), instant=False))
    return panel


def stat_panel(
    title: str,
    description: str,
    unit: str,
    query: Query,
    threshold_config: dashboard.ThresholdsConfig,
    *,
    width: int = 6,
    height: int = 4,
    decimals: float | None = None,
) -> stat.Panel:
    """A single value (last non-null), coloured by thresholds, with a sparkline."""
    panel = (
        stat.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .thresholds(threshold_config)
        .reduce_options(_last_value())
        .color_mode(common_model.BigValueColorMode.VALUE)
        .graph_mode(common_model.BigValueGraphMode.AREA)
        .text_mode(common_model.BigValueTextMode.AUTO)
        .with_target(_target(query, _ref_id(0), instant=False))
    )
    if decimals is not None:
        panel = panel.decimals(decimals)
    return panel


def gauge_panel(
    title: str,
    description: str,
    unit: str,
    query: Query,
    threshold_config: dashboard.ThresholdsConfig,
    *,
    min_value: float,
    max_value: float,
    width: int = 6,
    height: int = 6,
) -> gauge.Panel:
    """A gauge of the last value between `min_value` and `max_value`, threshold markers shown."""
    return (
        gauge.Panel()
        .title(title)
        .description(description)
        .datasource(DATASOURCE)
        .unit(unit)
        .span(width)
        .height(height)
        .min(min_value)
        .max(max_value)
        .decimals(0 if unit != Unit.RATIO else 1)
        .thresholds(threshold_config)
        .reduce_options(_last_value())
        .show_threshold_markers(True)
        .show_threshold_labels(False)
        .with_target(_target(query, _ref_id(0), instant=True))
    )


def efficiency_gauge(s: Selectors, width: int = 6, height: int = 6) -> gauge.Panel:
    return gauge_panel(
        "Memory efficiency",
        f"Σ working set ÷ Σ memory requests in the namespace (`{names.EFFICIENCY}`). Low: requests reserve memory "
        "the pods do not use; above 100 %: pods use more than they reserve.",
        Unit.RATIO,
        Query(selector(names.EFFICIENCY, s.ns), "efficiency"),
        efficiency_thresholds(),
        min_value=0,
        max_value=1,
        width=width,
        height=height,
    )


def tile_width(count: int, minimum: int = 4, maximum: int = 8) -> int:
    """Width of each of `count` panels sharing rows of the 24-column grid."""
    return max(minimum, min(maximum, 24 // max(1, count)))


# --- Dashboard assembly ---
@dataclass(frozen=True)
class Section:
    """A row of the dashboard and the panels under it, in reading order."""

    title: str
    panels: Sequence[cogbuilder.Builder[dashboard_model.Panel]]


def datasource_variable() -> dashboard.DatasourceVariable:
    return (
        dashboard.DatasourceVariable(DATASOURCE_VARIABLE)
        .label("Data source")
        .type("prometheus")
        .multi(False)
        .include_all(False)
    )


def namespace_variable(namespace: str) -> dashboard.CustomVariable:
    option = dashboard_model.VariableOption(selected=True, text=namespace, value=namespace)
    return (
        dashboard.CustomVariable(NAMESPACE_VARIABLE)
        .label("Namespace")
        .description("namespace of the HyperStudy workloads (stack config kubernetes.namespace)")
        .values(namespace)
        .current(option)
        .options([option])
        .multi(False)
        .include_all(False)
    )


def dashboard_links(config: StackConfig, slug: str) -> list[dashboard.DashboardLink]:
    """A link to each other dashboard of the same stack, by uid: another stack's dashboards are never offered."""
    return [
        dashboard.DashboardLink(TITLES[other])
        .type(dashboard_model.DashboardLinkType.LINK)
        .url(dashboard_url(dashboard_uid(config, other)))
        .tooltip(dashboard_title(config, other))
        .icon("dashboard")
        .include_vars(True)
        .keep_time(True)
        .target_blank(False)
        for other in TITLES
        if other != slug
    ]


def build_dashboard(
    slug: str,
    description: str,
    tags: Iterable[str],
    time_from: str,
    config: StackConfig,
    sections: Sequence[Section],
) -> dashboard.Dashboard:
    """The dashboard with the shared settings and variables, rows and panels laid out and numbered in order."""
    builder = (
        dashboard.Dashboard(dashboard_title(config, slug))
        .uid(dashboard_uid(config, slug))
        .description(description)
        .tags([*TAGS, *tags])
        .readonly()
        .tooltip(dashboard_model.DashboardCursorSync.CROSSHAIR)
        .refresh(REFRESH)
        .time(time_from, "now")
        .timezone(TIMEZONE)
        .timepicker(dashboard.TimePicker().refresh_intervals(list(REFRESH_INTERVALS)))
        .with_variable(datasource_variable())
        .with_variable(namespace_variable(config.kubernetes.namespace))
        .links(dashboard_links(config, slug))
    )
    panel_id = 0
    for section in sections:
        panel_id += 1
        builder = builder.with_row(dashboard.Row(section.title).id(panel_id))
        for panel in section.panels:
            panel_id += 1
            builder = builder.with_panel(panel.id(panel_id))  # type: ignore[attr-defined]
    return builder
