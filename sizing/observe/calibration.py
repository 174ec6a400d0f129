"""Calibrating the capacity formula from measured data: `python -m sizing fit`.

It reads each formula-sized pod's working set and its connected users per role from Prometheus (or from an export
of the same range queries), aligns them per pod and timestamp, and fits `base_mib + Σ per_role_mib × users` with
non-negative coefficients, robust to outliers (restarts, GC spikes): scipy's `least_squares` with a soft-L1 loss,
its scale the residuals' MAD. The 95 % intervals come from the inliers' covariance. numpy and scipy are imported
by `fit` only, so `plan` never pays for them.

A coefficient the data cannot identify (a role that never varies, roles that move in lockstep, too few samples, no
users at all) is refused with one line naming it, rather than fitted to noise.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import Field

from sizing.config.stack import formula_workloads
from sizing.core.errors import ConfigError
from sizing.core.model import ROLES, Model
from sizing.core.quantity import MIB_BYTES
from sizing.observe.contract import CONNECTED_USERS, PROCESS_RSS, WORKING_SET
from sizing.observe.prometheus import read_export
from sizing.observe.promql import POD, eq, namespace_matcher, real_containers, regex, selector, statefulset_pod_regex

if TYPE_CHECKING:
    from sizing.config.capacity import Formula
    from sizing.config.stack import StackConfig
    from sizing.observe.prometheus import Prometheus

EXPORT_FORMAT = "hyperstudy-fit/1"
# Fewer samples than this cannot tell four coefficients from noise.
MIN_SAMPLES = 50
# A role whose counts the other roles explain this well moves in lockstep with them.
COLLINEAR_R2 = 0.999
# Residuals beyond this many robust standard deviations are outliers (restarts, GC spikes): out of the intervals.
OUTLIER_SIGMAS = 3.0
MAD_TO_SIGMA = 1.4826
# The intervals treat the samples of one pod within this span as one cluster: memory errors last minutes, not 30 s.
CLUSTER_S = 2 * 3600


class Coefficients(Model):
    """The formula's coefficients, MiB (fractional as fitted)."""

    base_mib: float = Field(description="memory of an idle backend pod")
    per_role_mib: dict[str, float] = Field(description="memory each connected user of a role adds")

    def rounded(self) -> dict[str, Any]:
        """As the config holds them: whole MiB."""
        return {
            "base_mib": round(self.base_mib),
            "per_role_mib": {role: round(value) for role, value in self.per_role_mib.items()},
        }


class Intervals(Model):
    """95 % intervals of the coefficients, `[low, high]` MiB."""

    base_mib: tuple[float, float] = Field(description="interval of the base")
    per_role_mib: dict[str, tuple[float, float]] = Field(description="interval of each role's coefficient")


class Residuals(Model):
    """|measured − fitted| over every sample, MiB."""

    p50: float = Field(description="median")
    p95: float = Field(description="95th percentile")
    max: float = Field(description="largest")


class Fit(Model):
    """The fitted formula and how well it explains the data."""

    coefficients: Coefficients = Field(description="fitted coefficients")
    intervals: Intervals = Field(description="their 95 % intervals")
    r2: float = Field(description="share of the working set's variance the formula explains")
    samples: int = Field(description="aligned (pod, timestamp) samples")
    outliers: int = Field(description="samples beyond 3 robust standard deviations, left out of the intervals")
    pods: int = Field(description="pods the samples come from")
    days: float = Field(description="time the samples cover, days")
    residual_mib: Residuals = Field(description="the residuals' size")


def queries(config: StackConfig) -> dict[str, str]:
    """The range queries of the data: each formula-sized pod's working set (its real containers, as the rules read
    it) and its users per role, 0 for a role without a series while the pod is scraped (as the rules count it)."""
    workloads = formula_workloads(config)
    if not workloads:
        raise ConfigError(config.key("workloads"), "no workload has sized_by: formula: there is no formula to fit")
    ns, pods = namespace_matcher(config.kubernetes.namespace), regex("pod", statefulset_pod_regex(workloads))
    by = ", ".join(POD)
    anchor = " or ".join(f"group by ({by}) ({selector(m, ns, pods)})" for m in (CONNECTED_USERS, PROCESS_RSS))
    # One value per container (cAdvisor scraped twice, a restarted container's stale series), then the pod's sum:
    # the rules' per-pod working set.
    per_container = f"max by ({by}, container) ({selector(WORKING_SET, ns, pods, *real_containers())})"
    found = {"working_set": f"sum by ({by}) ({per_container})"}
    for role in ROLES:
        users = selector(CONNECTED_USERS, ns, pods, eq("role", role))
        found[role] = f"sum by ({by}) ({users}) or on ({by}) 0 * ({anchor})"
    return found


def collect(client: Prometheus, config: StackConfig, since_s: float, step_min_s: float) -> dict[str, Any]:
    """Run the range queries over the last `since_s` seconds (of the server's clock): the export `fit` reads."""
    from sizing.observe.prometheus import range_step

    end = client.now()
    start = end - since_s
    step = range_step(start, end, step_min_s)
    exprs = queries(config)
    return {
        "format": EXPORT_FORMAT,
        "namespace": config.kubernetes.namespace,
        "start": start,
        "end": end,
        "step": step,
        "queries": exprs,
        "results": {name: client.query_range(expr, start, end, step) for name, expr in exprs.items()},
    }


def load_export(path: Path, config: StackConfig) -> dict[str, Any]:
    """An export written by `--save`, checked to be one and to be of this stack's namespace."""
    export = read_export(path, EXPORT_FORMAT, "fit")
    results = export.get("results")
    if not isinstance(results, dict) or any(not isinstance(results.get(k), list) for k in ("working_set", *ROLES)):
        raise ConfigError(str(path), "the export lacks the working set or a role's users")
    for name in ("working_set", *ROLES):
        problem = _malformed(results[name])
        if problem is not None:
            raise ConfigError(str(path), f"results.{name}: {problem}")
    namespace = config.kubernetes.namespace
    if export.get("namespace") != namespace:
        raise ConfigError(str(path), f"holds namespace {export.get('namespace')!r}, the stack's is {namespace!r}")
    return export


def _malformed(result: list[Any]) -> str | None:
    """What is wrong with a range query's result, None when it is one: series with a pod and [time, "value"] pairs,
    each pod once."""
    seen: set[str] = set()
    for index, series in enumerate(result):
        metric = series.get("metric") if isinstance(series, dict) else None
        values = series.get("values") if isinstance(series, dict) else None
        if not isinstance(metric, dict) or not isinstance(values, list):
            return f"series {index} is not {{metric, values}}"
        pod = metric.get("pod")
        if not isinstance(pod, str):
            return f"series {index} has no pod label"
        if pod in seen:
            return f"pod {pod} has two series (the query sums per pod: an export has one)"
        seen.add(pod)
        for pair in values:
            try:
                float(pair[0]), float(pair[1])
            except (TypeError, ValueError, IndexError, KeyError, OverflowError):
                return f'series {index} ({pod}) has a sample that is not [time, "value"]: {pair!r:.60}'
    return None


def _by_pod_time(result: list[dict[str, Any]]) -> dict[tuple[str, float], float]:
    values: dict[tuple[str, float], float] = {}
    for series in result:
        pod = series.get("metric", {}).get("pod")
        for stamp, value in series.get("values", []):
            number = float(value)
            # Beyond a petabyte is no working set: what overflows the fit is a broken sample, dropped like NaN.
            if pod is not None and math.isfinite(number) and abs(number) < 1e18:
                values[(pod, float(stamp))] = number
    return values


class Samples:
    """The aligned data: one row per (pod, timestamp) with the working set and every role's users."""

    def __init__(self, export: dict[str, Any]) -> None:
        results = export["results"]
        working_set = _by_pod_time(results["working_set"])
        users = {role: _by_pod_time(results[role]) for role in ROLES}
        keys = sorted(k for k in working_set if all(k in users[role] for role in ROLES))
        self.pods = [pod for pod, _ in keys]
        self.times = [stamp for _, stamp in keys]
        self.working_set_mib = [working_set[k] / MIB_BYTES for k in keys]
        self.users = {role: [users[role][k] for k in keys] for role in ROLES}

    def __len__(self) -> int:
        return len(self.times)


def _identifiable(samples: Samples, config: StackConfig) -> None:
    """Refuse, naming the coefficient, what the data cannot tell apart."""
    import numpy as np

    formula = "capacity.formula"
    if len(samples) < MIN_SAMPLES:
        raise ConfigError(
            config.key(formula),
            f"too few samples to fit ({len(samples)}; at least {MIN_SAMPLES} aligned working-set and users samples "
            "of the formula-sized pods): look further back (--since) or check that the pods are scraped",
        )
    columns = {role: np.asarray(samples.users[role], dtype=float) for role in ROLES}
    if not any(column.any() for column in columns.values()):
        raise ConfigError(
            config.key(f"{formula}.per_role_mib"),
            f"no users at all in {len(samples)} samples: only the base can be measured, not what a user adds",
        )
    for role, column in columns.items():
        if np.ptp(column) == 0:
            raise ConfigError(
                config.key(f"{formula}.per_role_mib.{role}"),
                f"{role} never varies in the data (always {column[0]:g} per pod): its memory cannot be told from "
                "the base; fit over a period with experiments of that role starting and ending",
            )
    for role, column in columns.items():
        others = [columns[o] for o in ROLES if o != role]
        design = np.column_stack([np.ones_like(column), *others])
        solution, *_ = np.linalg.lstsq(design, column, rcond=None)
        explained = 1 - np.sum((column - design @ solution) ** 2) / np.sum((column - column.mean()) ** 2)
        if explained >= COLLINEAR_R2:
            raise ConfigError(
                config.key(f"{formula}.per_role_mib.{role}"),
                f"{role} moves in lockstep with the other roles (they explain {explained:.4f} of its variation): "
                "their memory cannot be told apart; fit over a period where the mix of roles changes",
            )


def fit(samples: Samples, config: StackConfig) -> Fit:
    """The robust non-negative fit of the formula to `samples`; a `ConfigError` when a coefficient is not identified."""
    _identifiable(samples, config)
    import numpy as np
    from scipy import optimize, stats

    y = np.asarray(samples.working_set_mib, dtype=float)
    design = np.column_stack([np.ones_like(y), *(np.asarray(samples.users[r], dtype=float) for r in ROLES)])
    start, *_ = np.linalg.lstsq(design, y, rcond=None)
    start = np.clip(start, 1e-6, None)
    first = y - design @ start
    scale = max(MAD_TO_SIGMA * float(np.median(np.abs(first - np.median(first)))), 0.1)
    solution = optimize.least_squares(
        lambda b: design @ b - y,
        start,
        jac=lambda b: design,
        bounds=(0, np.inf),
        loss="soft_l1",
        f_scale=scale,
        method="trf",
    ).x
    robust = y - design @ solution
    sigma = MAD_TO_SIGMA * float(np.median(np.abs(robust - np.median(robust))))
    inliers = np.abs(robust - np.median(robust)) <= OUTLIER_SIGMAS * max(sigma, 1e-9)
    # The soft-L1 loss still lets one-sided outliers (GC spikes only add memory) pull the coefficients by a fraction
    # of the scale; refitting the inliers alone removes that bias, so the intervals are about the right values.
    kept = design[inliers]
    solution = optimize.lsq_linear(kept, y[inliers], bounds=(0, np.inf), method="bvls").x
    residuals = y - design @ solution
    covariance, df = _clustered_covariance(samples, kept, residuals[inliers], inliers)
    half = stats.t.ppf(0.975, df) * np.sqrt(np.clip(np.diag(covariance), 0, None))
    low, high = np.clip(solution - half, 0, None), solution + half
    absolute = np.abs(residuals)
    total = float(np.sum((y - y.mean()) ** 2))

    def per_role(values: Any) -> dict[str, Any]:
        return {role: values[i + 1] for i, role in enumerate(ROLES)}

    return Fit(
        coefficients=Coefficients(base_mib=float(solution[0]), per_role_mib=per_role([float(v) for v in solution])),
        intervals=Intervals(
            base_mib=(float(low[0]), float(high[0])),
            per_role_mib=per_role([(float(a), float(b)) for a, b in zip(low, high, strict=True)]),
        ),
        r2=1 - float(np.sum(residuals**2)) / total if total else 1.0,
        samples=len(samples),
        outliers=int((~inliers).sum()),
        pods=len(set(samples.pods)),
        days=(max(samples.times) - min(samples.times)) / 86400,
        residual_mib=Residuals(
            p50=float(np.percentile(absolute, 50)),
            p95=float(np.percentile(absolute, 95)),
            max=float(absolute.max()),
        ),
    )


def _clustered_covariance(samples: Samples, kept: Any, residuals: Any, inliers: Any) -> tuple[Any, int]:
    """The coefficients' covariance, robust to memory that drifts for minutes at a time: the samples of one pod in
    one CLUSTER_S block share their errors (a GC cycle, a cache warming), so they count as one cluster (CR1 sandwich,
    t with clusters − 1 degrees of freedom). Treating 30 s samples as independent would make the intervals tens of
    times too narrow on real data."""
    import numpy as np

    pods = np.asarray(samples.pods, dtype=object)[inliers]
    blocks = (np.asarray(samples.times, dtype=float)[inliers] // CLUSTER_S).astype(np.int64)
    _, cluster = np.unique(np.stack([np.unique(pods, return_inverse=True)[1], blocks]), axis=1, return_inverse=True)
    cluster = cluster.ravel()
    groups = int(cluster.max()) + 1
    n, k = kept.shape
    bread = np.linalg.pinv(kept.T @ kept)
    scores = np.zeros((groups, k))
    np.add.at(scores, cluster, kept * residuals[:, None])
    correction = groups / max(groups - 1, 1) * (n - 1) / max(n - k, 1)
    return correction * bread @ (scores.T @ scores) @ bread, max(groups - 1, 1)


def fitted_formula(result: Fit, current: Formula) -> Formula:
    """The config's formula with the fitted coefficients, in whole MiB as the config holds them."""
    rounded = result.coefficients.rounded()
    return current.model_copy(
        update={
            "base_mib": rounded["base_mib"],
            "per_role_mib": current.per_role_mib.model_copy(update=rounded["per_role_mib"]),
        }
    )


def with_formula(config: StackConfig, formula: Formula) -> StackConfig:
    """The stack config with another capacity formula (everything else, the namespace included, kept)."""
    return config.model_copy(update={"capacity": config.capacity.model_copy(update={"formula": formula})})
