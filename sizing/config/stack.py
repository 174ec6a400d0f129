"""`StackConfig`: every key of the project's namespace in a stack file, and the checks that span keys."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import Field, PrivateAttr, model_validator

from sizing.config.capacity import CapacityConfig
from sizing.config.catalogue import CatalogueConfig
from sizing.config.cluster import ClusterConfig
from sizing.config.cost import CostConfig
from sizing.config.ingress import IngressConfig, default_routes
from sizing.config.kubernetes import KubernetesConfig, PinnedImage
from sizing.config.monitoring import MonitoringConfig
from sizing.config.nodes import NodePoolConfig
from sizing.config.runtime import RuntimeConfig
from sizing.config.schedule import CRONJOB_NAME
from sizing.config.workloads import WorkloadConfig, check_app, resolve_apps
from sizing.core.errors import PathError
from sizing.core.model import Model, Profile
from sizing.facts.catalogue import MachineType, machine_series
from sizing.facts.routes import INGRESS_CONTROLLER, covers, internal_paths

_WORKLOAD_NAME = re.compile(r"[a-z]([-a-z0-9]{0,38}[a-z0-9])?")
DEFAULT_NAMESPACE = "hyperstudy-infra"


class StackConfig(Model):
    """Every key of the project's namespace in a stack's config."""

    # The config namespace the values were read under, so errors found later (while planning) name the full key.
    _namespace: str = PrivateAttr(default=DEFAULT_NAMESPACE)
    # The project's keys that hold a secret (a `secure:` ciphertext in the stack file): receivers name them.
    _secrets: frozenset[str] = PrivateAttr(default=frozenset())

    profile: Profile = Field("optimized", description="sizing profile; baseline is the rollback")
    capacity: CapacityConfig = Field(description="capacity formula, experiment shapes, load, headroom, rounding")
    workloads: dict[str, WorkloadConfig] = Field(
        description="workloads by name, each with its application facts (`app`: the built-in ones of its name, "
        "overridden key by key)"
    )
    runtime: RuntimeConfig = Field(default_factory=RuntimeConfig, description="runtime memory fractions")
    nodes: NodePoolConfig = Field(description="node pool: machine type, disk, overhead")
    catalogue: CatalogueConfig = Field(default_factory=CatalogueConfig, description="price and machine overrides")
    cluster: ClusterConfig | None = Field(None, description="GKE cluster (needed by the Pulumi program)")
    kubernetes: KubernetesConfig = Field(default_factory=KubernetesConfig, description="namespace and API version")
    images: dict[str, PinnedImage] = Field(
        default_factory=dict, description="container image per workload (one for every workload)"
    )
    monitoring: MonitoringConfig = Field(default_factory=MonitoringConfig, description="rules, alerts, dashboards")
    ingress: IngressConfig = Field(
        default_factory=IngressConfig, description="public host names, routes, certificates and cert-manager"
    )
    cost: CostConfig = Field(default_factory=CostConfig, description="the observed starting bill and credits")

    @model_validator(mode="before")
    @classmethod
    def _app_facts_and_routes(cls, values: Any) -> Any:
        """The one place the built-in application facts and routes become config: each workload's `app` completed
        from the built-in facts of its name, and `ingress.routes`, when not given, the built-in routes to the
        workloads the stack runs. What is not a mapping is left to the model to refuse."""
        if not isinstance(values, Mapping) or not isinstance(values.get("workloads"), Mapping):
            return values
        workloads = values["workloads"]
        for name in workloads:
            # Before the facts are looked up by name, so that a problem names only a valid workload name.
            if not (isinstance(name, str) and _WORKLOAD_NAME.fullmatch(name)):
                raise PathError(
                    f"workloads.{name}", "name must be a lowercase DNS label (a-z, 0-9 and -, at most 40 characters)"
                )
        resolved = {**values, "workloads": resolve_apps(workloads)}
        ingress = values.get("ingress")
        if ingress is None:
            resolved["ingress"] = {"routes": default_routes(workloads)}
        elif isinstance(ingress, Mapping) and "routes" not in ingress:
            resolved["ingress"] = {**ingress, "routes": default_routes(workloads)}
        return resolved

    @model_validator(mode="after")
    def _references_resolve(self) -> StackConfig:
        if not self.workloads:
            raise PathError("workloads", "at least one workload is required")
        for name, workload in self.workloads.items():
            if name not in self.images:
                raise PathError(f"images.{name}", "required key is missing (a pinned image per workload)")
            check_app(name, workload)
        try:
            known = self.catalogue.machine_types_merged()
        except PathError as err:
            raise PathError(f"catalogue.{err.path}", err.problem) from None
        for name in self.images:
            if name not in self.workloads:
                raise PathError(f"images.{name}", "no workload of that name")
        self._routes_reach_their_workloads()
        self._cronjob_names_fit()
        shape = self.monitoring.capacity_shape
        if shape not in self.capacity.shapes:
            raise PathError("monitoring.capacity_shape", f"unknown experiment shape {shape!r}")
        if self.capacity.formula.users_mib(self.capacity.shapes[shape]) <= 0:
            raise PathError("monitoring.capacity_shape", f"shape {shape!r} needs no memory: no slots to count")
        if self.monitoring.install_stack and not self.monitoring.prometheus_operator:
            raise PathError("monitoring.install_stack", "needs prometheus_operator: the stack is what runs the rules")
        if not (self.monitoring.prometheus_operator or self.monitoring.managed_prometheus):
            raise PathError("monitoring", "prometheus_operator or managed_prometheus must be true (who runs the rules)")
        if self.monitoring.install_stack:
            for name, volume in self.monitoring.storage.volumes().items():
                if self.catalogue.storage_disk(volume.storage_class) is None:
                    raise PathError(
                        f"monitoring.storage.{name}.storage_class",
                        f"{volume.storage_class!r} cannot be priced: map it to its disk type under "
                        "catalogue.storage_classes",
                    )
        if self.nodes.machine_type not in known:
            raise PathError(
                "nodes.machine_type",
                f"unknown machine type {self.nodes.machine_type!r} "
                f"(known: {', '.join(sorted(known))}; add it under catalogue.machine_types)",
            )
        self._commitment_applies()
        return self

    def _commitment_applies(self) -> None:
        """A commitment discounts on-demand machines of a series the catalogue prices it for. Spot VMs get no
        committed-use discount: a commitment bought for a spot pool would be paid on top of the spot price."""
        term = self.cost.commitment
        if term == "none":
            return
        if self.nodes.spot:
            raise PathError(
                "cost.commitment",
                f"is {term}, but nodes.spot is true: spot VMs get no committed-use discount (set commitment: none)",
            )
        if self.catalogue.commitment_discount(self.nodes.machine_type, term) is None:
            series = machine_series(self.nodes.machine_type)
            raise PathError(
                "cost.commitment",
                f"is {term}, but the catalogue has no {term} discount for {self.nodes.machine_type}'s series {series} "
                f"(add it under catalogue.commitment_discounts.{series})",
            )

    def _routes_reach_their_workloads(self) -> None:
        for index, route in enumerate(self.ingress.routes):
            workload = self.workloads.get(route.workload)
            if workload is None:
                raise PathError(
                    f"ingress.routes.{index}.workload",
                    f"{route.workload!r} is no workload of this stack (workloads: {', '.join(sorted(self.workloads))})",
                )
            app = workload.app
            exposed = [path for path in internal_paths(app) if covers(route.path, path)]
            if exposed:
                raise PathError(
                    f"ingress.routes.{index}.path",
                    f"{route.path!r} would make {route.workload}'s {', '.join(exposed)} public (its metrics or health "
                    "checks): route narrower prefixes",
                )
            if not (app.public or INGRESS_CONTROLLER in app.clients):
                # Its NetworkPolicy admits only its clients: the Ingress would route to a Service Traefik cannot reach.
                raise PathError(
                    f"ingress.routes.{index}.workload",
                    f"{route.workload} does not admit {INGRESS_CONTROLLER}, which serves the routes: add it to "
                    f"workloads.{route.workload}.app.clients",
                )

    def _cronjob_names_fit(self) -> None:
        """Each window's CronJobs (`<workload>-<window>-up`/`-down`, components/schedule.py) are named within what
        Kubernetes takes. Only with the one formula-sized workload a schedule scales (else the plan refuses)."""
        scaled = formula_workloads(self)
        if len(scaled) != 1:
            return
        for window in self.capacity.schedule:
            for direction in ("up", "down"):
                name = f"{scaled[0]}-{window.name}-{direction}"
                if not re.fullmatch(CRONJOB_NAME, name):
                    raise PathError(
                        f"capacity.schedule.{window.name}",
                        f"its CronJob would be named {name!r}, {len(name)} characters: Kubernetes takes at most 52 "
                        "(its Jobs add 11); shorten the window's name",
                    )

    @property
    def config_namespace(self) -> str:
        """The config namespace the keys were read under: the project's name."""
        return self._namespace

    def key(self, path: str) -> str:
        """The full config key of a dotted path, e.g. `hyperstudy-infra:workloads.redis`."""
        return f"{self._namespace}:{path}"

    def machine(self) -> MachineType:
        return self.catalogue.machine_types_merged()[self.nodes.machine_type]

    def with_profile(self, profile: Profile) -> StackConfig:
        return self.model_copy(update={"profile": profile})

    def secret_keys(self) -> tuple[str, ...]:
        """The secret config keys the stack's receivers read (without the namespace)."""
        return self.monitoring.alerting.secret_keys()

    def missing_secrets(self) -> tuple[str, ...]:
        """Secret config keys a receiver reads that the stack does not hold yet."""
        return tuple(key for key in self.secret_keys() if key not in self._secrets)

    def warnings(self) -> tuple[str, ...]:
        """What the stack leaves undone that would fail a person: nobody can reach the app, anyone can reach its
        control plane, or its alerts reach nobody. One sentence each."""
        found = []
        if not self.ingress.hosts:
            found.append(
                f"{self.key('ingress.hosts')}: no public host, so the load balancer answers every request with 404: "
                "name the host(s) the app is served on"
            )
        cluster = self.cluster
        if cluster is not None and cluster.create and not cluster.master_authorized_networks:
            found.append(
                f"{self.key('cluster.master_authorized_networks')}: empty, so the control plane's public endpoint "
                "accepts connections from any address (credentials are still needed): list the CIDRs that run "
                "pulumi and kubectl"
            )
        return (*found, *self._alerting_warnings())

    def _alerting_warnings(self) -> tuple[str, ...]:
        monitoring = self.monitoring
        if not (monitoring.install_stack or monitoring.managed_prometheus):
            return ()
        alerting = monitoring.alerting
        if not alerting.receivers:
            which = "installed" if monitoring.install_stack else "Managed Prometheus'"
            return (
                f"{self.key('monitoring.alerting')}: the {which} Alertmanager has no receiver, so every alert "
                "reaches no one: add receivers and route critical and warning to them",
            )
        found = []
        unrouted = alerting.unrouted()
        if unrouted:
            found.append(f"{self.key('monitoring.alerting.routes')}: {' and '.join(unrouted)} alerts reach no receiver")
        if alerting.heartbeat is None:
            found.append(
                f"{self.key('monitoring.alerting.heartbeat')}: no dead-man's switch, so if Prometheus, Alertmanager "
                "or the cluster's egress dies, alerts stop without anyone knowing: set heartbeat: {url_secret: <key>} "
                "to a healthchecks.io (or Dead Man's Snitch) check's URL"
            )
        found += [
            f"{self.key(key)}: secret not set, so its receiver cannot notify: "
            f"pulumi config set --secret {key} <value> (before pulumi up)"
            for key in self.missing_secrets()
        ]
        return tuple(found)


def formula_workloads(config: StackConfig) -> tuple[str, ...]:
    """The workloads sized by the capacity formula: the backend pods that serve experiments."""
    return tuple(sorted(name for name, w in config.workloads.items() if w.sized_by == "formula"))
