"""Every pod's size: the app's workloads (the capacity formula's or the config's memory, the CPU request, the
runtime memory setting derived from the limit) and the pods of the Helm charts the program installs, sized like
them. Pure functions of the config; `build` puts their results into the `Plan`.
"""

from __future__ import annotations

import math

from sizing.config.chart_sizes import ChartComponents
from sizing.config.monitoring import STACK_CHART
from sizing.config.runtime import V8_DEFAULT_SEMI_SPACE_MIB, RuntimeConfig
from sizing.config.stack import StackConfig
from sizing.core.errors import ConfigError
from sizing.core.model import MemorySize, Runtime
from sizing.core.quantity import format_mib
from sizing.facts.charts import CERT_MANAGER, CHARTS
from sizing.plan.types import (
    ContainerPlan,
    Derivation,
    InstalledChart,
    NodeMemory,
    RuntimeSetting,
    WorkloadPlan,
)


def runtime_setting(
    kind: Runtime, limit_mib: int, config: RuntimeConfig, old_space_mib: int | None = None
) -> RuntimeSetting:
    """The runtime memory setting derived from a container's memory limit (Node.js: or the old space it is given)."""
    if kind == "nodejs":
        heap = old_space_mib if old_space_mib is not None else math.floor(limit_mib * config.nodejs_heap_fraction)
        split = NodeMemory(
            limit_mib=limit_mib,
            old_space_mib=heap,
            semi_space_mib=V8_DEFAULT_SEMI_SPACE_MIB,
            semi_space_capped=False,
            native_needed_mib=config.nodejs_native_mib,
        )
        flags = f"--max-old-space-size={heap}"
        if not split.fits:
            # V8's default young generation would crowd out the native memory: cap it. Where it fits (the backend)
            # no flag is set, and a large heap keeps V8's larger, less frequent scavenges.
            split = split.model_copy(update={"semi_space_mib": config.nodejs_semi_space_mib, "semi_space_capped": True})
            flags += f" --max-semi-space-size={config.nodejs_semi_space_mib}"
        return RuntimeSetting(kind=kind, memory_mib=heap, env={"NODE_OPTIONS": flags}, node_memory=split)
    if kind == "redis":
        # Redis reads "mb" as 1024*1024 bytes ("m" would be 10^6).
        maxmemory = math.floor(limit_mib * config.redis_maxmemory_fraction)
        args = ("--maxmemory", f"{maxmemory}mb", "--maxmemory-policy", config.redis_eviction_policy)
        return RuntimeSetting(kind=kind, memory_mib=maxmemory, args=args)
    if kind == "go":
        soft_limit = math.floor(limit_mib * config.go_memlimit_fraction)
        return RuntimeSetting(kind=kind, memory_mib=soft_limit, env={"GOMEMLIMIT": f"{soft_limit}MiB"})
    return RuntimeSetting(kind=kind, memory_mib=None)


_FRACTION_KEYS = {"nodejs": "nodejs_heap_fraction", "redis": "redis_maxmemory_fraction", "go": "go_memlimit_fraction"}


def size_workloads(config: StackConfig) -> dict[str, WorkloadPlan]:
    """Requests, limits and runtime settings of every workload in the config's profile."""
    capacity = config.capacity
    rounding = capacity.rounding
    rounding_name = "power of two" if rounding.mode == "power_of_two" else f"step {rounding.step_mib} MiB"
    plans: dict[str, WorkloadPlan] = {}
    for name, workload in config.workloads.items():
        derivation, old_space = None, None
        if config.profile == "optimized" and workload.sized_by == "formula":
            typical, peak = capacity.mix("typical"), capacity.mix("peak")
            headroom = capacity.headroom
            request_raw = capacity.formula.memory_mib(typical) * (1 + headroom.request_pct / 100)
            limit_raw = capacity.formula.memory_mib(peak) * (1 + headroom.limit_pct / 100)
            request, limit = rounding.apply(request_raw), rounding.apply(limit_raw)
            if request > limit:
                raise ConfigError(
                    config.key(f"workloads.{name}"),
                    f"formula gives request {format_mib(request)} above limit {format_mib(limit)}: "
                    "raise capacity.headroom.limit_pct or the peak load",
                )
            derivation = Derivation(
                typical_mix=typical,
                peak_mix=peak,
                typical_line=capacity.formula.explain(typical),
                peak_line=capacity.formula.explain(peak),
                typical_mib=capacity.formula.memory_mib(typical),
                peak_mib=capacity.formula.memory_mib(peak),
                request_headroom_pct=headroom.request_pct,
                limit_headroom_pct=headroom.limit_pct,
                request_unrounded_mib=round(request_raw, 4),
                limit_unrounded_mib=round(limit_raw, 4),
                rounding=rounding_name,
            )
        else:
            sizes = getattr(workload.memory, config.profile) or workload.memory.baseline
            request, limit, old_space = sizes.request, sizes.limit, sizes.old_space
        runtime = runtime_setting(workload.runtime, limit, config.runtime, old_space)
        if runtime.memory_mib is not None and runtime.memory_mib < 1:
            # 0 is no ceiling at all for Redis (maxmemory 0) and a broken one for Node.js and Go.
            raise ConfigError(
                config.key(f"runtime.{_FRACTION_KEYS[workload.runtime]}"),
                f"gives workloads.{name} a {workload.runtime} memory setting of 0 MiB under its "
                f"{format_mib(limit)} limit: raise the fraction or the limit",
            )
        split = runtime.node_memory
        if split is not None and not split.fits:
            # The old space and the young generation are V8's ceilings; what is left must hold everything else the
            # process holds, or the kernel reclaims the node binary's own pages until the process stalls.
            smallest = format_mib(split.smallest_limit_mib(None if old_space else config.runtime.nodejs_heap_fraction))
            if derivation is not None:
                where, fix = f"workloads.{name}", "raise capacity.headroom.limit_pct or the peak load, or lower "
                fix += "runtime.nodejs_heap_fraction"
            else:
                where, fix = f"workloads.{name}.memory.{config.profile}.limit", "or give it a smaller old_space"
            raise ConfigError(config.key(where), f"{split.explain()}: the limit must be at least {smallest}: {fix}")
        # A scheduled window scales the formula-sized workload beyond its replicas: it is spread even at one.
        scaled = workload.sized_by == "formula" and bool(capacity.schedule)
        plans[name] = WorkloadPlan(
            name=name,
            replicas=workload.replicas,
            spread=workload.spread if workload.replicas > 1 or scaled else "none",
            cpu_request_m=workload.cpu_request,
            memory_request_mib=request,
            memory_limit_mib=limit,
            runtime=runtime,
            derivation=derivation,
            config_path=f"workloads.{name}",
        )
    return plans


def installed_charts(config: StackConfig) -> list[InstalledChart]:
    """The charts whose pods the stack's pool runs: kube-prometheus-stack when the program installs it, cert-manager
    when the stack has public hosts (its solver pods run in the stack's namespace even under a cluster's own
    cert-manager, which `ingress.install_cert_manager: false` leaves to the cluster)."""
    charts = []
    if config.monitoring.install_stack:
        charts.append(
            InstalledChart(
                chart=CHARTS[STACK_CHART],
                components=config.monitoring.components,
                path="monitoring.components",
                installed=True,
            )
        )
    ingress = config.ingress
    if ingress.hosts:
        charts.append(
            InstalledChart(
                chart=CERT_MANAGER,
                components=ingress.components,
                path="ingress.components",
                installed=ingress.install_cert_manager,
            )
        )
    return charts


def size_chart_workloads(config: StackConfig) -> dict[str, WorkloadPlan]:
    """The pods of the charts on the pool (`installed_charts`), sized from their components config in the
    config's profile.

    A DaemonSet's `replicas` is 0 here: it runs one pod per node, which `build_plan` fills in from the node plan. A
    per-host pod runs once per public host.
    """
    plans: dict[str, WorkloadPlan] = {}
    for installed in installed_charts(config):
        chart, components = installed.chart, installed.components

        def sizes(name: str, components: ChartComponents = components) -> tuple[MemorySize, int]:
            entry = components.by_name(name)
            return entry.memory.of(config.profile), entry.cpu_request

        for pod in chart.pods:
            if not (installed.installed or pod.without_install):
                continue
            memory, cpu = sizes(pod.main.sizes)
            sidecars = []
            for sidecar in pod.sidecars:
                sidecar_memory, sidecar_cpu = sizes(sidecar.sizes)
                sidecars.append(
                    ContainerPlan(
                        name=sidecar.container,
                        cpu_request_m=sidecar_cpu,
                        memory_request_mib=sidecar_memory.request,
                        memory_limit_mib=sidecar_memory.limit,
                        config_path=f"{installed.path}.{sidecar.sizes}",
                    )
                )
            path = f"{installed.path}.{pod.main.sizes}"
            runtime = runtime_setting(pod.runtime, memory.limit, config.runtime)
            if runtime.memory_mib is not None and runtime.memory_mib < 1:
                raise ConfigError(
                    config.key(f"runtime.{_FRACTION_KEYS[pod.runtime]}"),
                    f"gives {path} a {pod.runtime} memory setting of 0 MiB under its {format_mib(memory.limit)} limit",
                )
            if pod.kind == "DaemonSet":
                replicas = 0
            elif pod.per_host:
                replicas = len(config.ingress.hosts)
            else:
                replicas = components.by_name(pod.main.sizes).replicas or 1
            plans[pod.name] = WorkloadPlan(
                name=pod.name,
                replicas=replicas,
                cpu_request_m=cpu,
                memory_request_mib=memory.request,
                memory_limit_mib=memory.limit,
                runtime=runtime,
                source=chart.name,
                per_node=pod.kind == "DaemonSet",
                sidecars=tuple(sidecars),
                config_path=path,
            )
    return plans
