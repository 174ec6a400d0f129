"""The application facts of a workload that are not sizes (`WorkloadSpec`), and the built-in ones of each HyperStudy
workload: the `SPECS` table.

How a workload runs (controller kind, what runtime the image runs, how many pods it supports, port, probes, user,
writable paths, storage, who may call it, how it is exposed, where it serves Prometheus metrics) is a property of
the application and its image; it does not change with the sizing profile. It is config, `workloads.<name>.app`:
`SPECS` holds its defaults by workload name, which a stack overrides key by key (`sizing.config.workloads`
resolves them, and is the only reader of this table). Sizes (memory, CPU, replicas, runtime memory settings) live
only in `sizing.plan.WorkloadPlan`; nothing here is a size of a running process. `components.workload` combines one
`WorkloadSpec` with one `WorkloadPlan`.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Literal

from pydantic import Field, model_validator

from sizing.core.model import MiB, Model, Runtime

# Kubernetes port names are IANA service names: at most 15 characters (max_length), lowercase letters, digits
# and dashes, at least one letter (here: the first character).
_PORT_NAME = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"
_ABSOLUTE_PATH = r"^/[-._/a-zA-Z0-9]*$"


class HttpCheck(Model):
    """An HTTP GET on the workload's port; any 2xx/3xx answer passes."""

    type: Literal["http"] = Field("http", description="discriminator: an HTTP GET")
    path: str = Field(pattern=r"^/", description="path requested on the workload's named port")


class TcpCheck(Model):
    """A TCP connect to the workload's port."""

    type: Literal["tcp"] = Field("tcp", description="discriminator: a TCP connect")


class ExecCheck(Model):
    """A command run inside the container; exit code 0 passes."""

    type: Literal["exec"] = Field("exec", description="discriminator: a command in the container")
    command: tuple[str, ...] = Field(min_length=1, description="argv of the command (no shell)")


Check = Annotated[HttpCheck | TcpCheck | ExecCheck, Field(discriminator="type")]


class Probe(Model):
    """One probe: the check and its timing."""

    check: Check = Field(description="what is checked")
    period_seconds: int = Field(10, ge=1, description="seconds between checks")
    timeout_seconds: int = Field(2, ge=1, description="seconds a check may take before it counts as failed")
    failure_threshold: int = Field(3, ge=1, description="consecutive failures before the probe fails")

    @model_validator(mode="after")
    def _timeout_within_period(self) -> Probe:
        if self.timeout_seconds > self.period_seconds:
            raise ValueError("timeout_seconds is longer than period_seconds: checks would overlap")
        return self


class Probes(Model):
    """Readiness (traffic), liveness (restart) and, for slow starters, startup (holds liveness off)."""

    readiness: Probe = Field(description="gates traffic from Services")
    liveness: Probe = Field(description="restarts a container that stopped answering")
    startup: Probe | None = Field(
        None, description="holds liveness off while the process starts (None: starts within the liveness budget)"
    )


class ScratchVolume(Model):
    """A writable emptyDir mounted into a read-only root filesystem (on the node's disk, not tmpfs: tmpfs pages
    would count against the container's memory limit, which the sizing plan does not budget for)."""

    path: str = Field(pattern=_ABSOLUTE_PATH, description="mount path in the container")
    size_limit: MiB = Field(description="ephemeral storage cap; the pod is evicted above it")


class Storage(Model):
    """A persistent volume per pod (StatefulSet volumeClaimTemplate, ReadWriteOnce, the default StorageClass)."""

    volume: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="claim template name")
    path: str = Field(pattern=_ABSOLUTE_PATH, description="mount path in the container")
    size: MiB = Field(description="requested capacity (immutable once the claim exists)")


class ServedPort(Model):
    """A further port the workload serves to the same clients as its main one (Traefik's HTTPS entry point)."""

    name: str = Field(pattern=_PORT_NAME, max_length=15, description="container and Service port name")
    port: int = Field(ge=1024, le=65535, description="container port (unprivileged)")
    service_port: int = Field(ge=1, le=65535, description="port the Service exposes")


# GKE's health check of an external LoadBalancer Service with externalTrafficPolicy Local, on the Service's
# healthCheckNodePort: the target-pool load balancer a Service without the cloud.google.com/l4-rbs annotation gets
# probes every 8 s, times out after 1 s and drops a node after 3 failures (cloud-provider-gcp's gce_loadbalancer); the
# backend-service one probes every 3 s and drops after 2 (ingress-gce). The slower one bounds how long a pod that
# stops must keep serving before no new connection reaches its node.
LB_CHECK_INTERVAL_SECONDS = 8
LB_CHECK_TIMEOUT_SECONDS = 1
LB_UNHEALTHY_THRESHOLD = 3
LB_UNHEALTHY_AFTER_SECONDS = LB_CHECK_INTERVAL_SECONDS * LB_UNHEALTHY_THRESHOLD + LB_CHECK_TIMEOUT_SECONDS


class Drain(Model):
    """How a pod leaves the external load balancer before it stops: after SIGTERM it keeps accepting while it
    reports itself unready (its readiness probe, and its node's load-balancer health check, fail at once), then lets
    the requests in flight finish, then closes what is still open."""

    accept_seconds: int = Field(
        ge=0,
        description="seconds the pod keeps accepting new connections after SIGTERM: the load balancer's health check "
        "must have dropped its node by then",
    )
    finish_seconds: int = Field(ge=1, description="seconds requests in flight then get to finish")
    margin_seconds: int = Field(5, ge=1, description="seconds beyond both before the kubelet's SIGKILL")

    @property
    def termination_grace_period_seconds(self) -> int:
        return self.accept_seconds + self.finish_seconds + self.margin_seconds


class WorkloadSpec(Model):
    """How one workload runs: everything the manifests need that is not a size."""

    kind: Literal["Deployment", "StatefulSet"] = Field(
        description="StatefulSet when pods need a stable identity (`<name>-0`) or their own volume"
    )
    component: str = Field(
        pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", description="app.kubernetes.io/component: its role in HyperStudy"
    )
    runtime: Runtime = Field(
        description="what the image runs, so which memory setting it reads (nodejs heap, redis maxmemory, go "
        "GOMEMLIMIT, none); the config's workloads.<name>.runtime must say the same"
    )
    max_replicas: int | None = Field(
        None, ge=1, description="most pods the application supports (None: any number); config replicas above it fail"
    )
    port: int = Field(ge=1024, le=65535, description="container port (unprivileged: no capability to bind below 1024)")
    port_name: str = Field(
        pattern=_PORT_NAME, max_length=15, description="name of the container port, used by probes and Services"
    )
    service_port: int | None = Field(
        None, ge=1, le=65535, description="port the Service exposes (None: the container port)"
    )
    service_type: Literal["ClusterIP", "LoadBalancer"] = Field(
        "ClusterIP", description="LoadBalancer only for the entry point of external traffic"
    )
    external_traffic_policy: Literal["Cluster", "Local"] | None = Field(
        None,
        description="a LoadBalancer's externalTrafficPolicy: Local keeps the client's address and takes no second hop "
        "(only nodes running a pod pass the load balancer's health check) (None: the API server's default, Cluster)",
    )
    drain: Drain | None = Field(
        None, description="how the pod leaves the load balancer when it stops (None: the kubelet's default grace)"
    )
    probes: Probes = Field(description="readiness, liveness and optional startup probes")
    command: tuple[str, ...] = Field((), description="container command (empty: the image's entrypoint)")
    args: tuple[str, ...] = Field((), description="arguments before the sizing plan's runtime arguments")
    run_as_user: int = Field(ge=1, description="non-root UID the image's process runs as")
    run_as_group: int = Field(ge=1, description="primary GID, also the fsGroup that owns mounted volumes")
    read_only_root_filesystem: bool = Field(True, description="the image writes only to scratch volumes or storage")
    scratch: tuple[ScratchVolume, ...] = Field((), description="writable emptyDirs under a read-only root")
    storage: Storage | None = Field(None, description="persistent volume per pod (StatefulSets only)")
    clients: tuple[str, ...] = Field(
        (), description="workloads (app.kubernetes.io/name) allowed to connect to the port; all others are denied"
    )
    public: bool = Field(False, description="any source may connect to the port (the external entry point)")
    kubernetes_api: bool = Field(
        False, description="the process calls the Kubernetes API, so its service account token is mounted"
    )
    parallel_pods: bool = Field(
        False,
        description="StatefulSet podManagementPolicy Parallel: pods start and stop without waiting for each other",
    )
    min_ready_seconds: int = Field(
        10, ge=0, description="seconds a new pod must stay ready before the rollout moves on"
    )
    metrics_path: str | None = Field(
        None,
        pattern=_ABSOLUTE_PATH,
        description="HTTP path of the Prometheus metrics (None: the workload exports no Prometheus metrics)",
    )
    metrics_port: int | None = Field(
        None,
        ge=1024,
        le=65535,
        description="container port of a separate metrics listener (None: the metrics are served on `port`)",
    )
    metrics_port_name: str = Field(
        "metrics",
        pattern=_PORT_NAME,
        max_length=15,
        description="name of the container port `metrics_port` (unused without a separate metrics listener)",
    )
    extra_ports: tuple[ServedPort, ...] = Field(
        (), description="further ports served to the same clients and on the Service, beside `port`"
    )
    config_dir: str | None = Field(
        None,
        pattern=_ABSOLUTE_PATH,
        description="where the workload's config files (a ConfigMap the installation fills) are mounted, read-only",
    )

    @model_validator(mode="after")
    def _consistent(self) -> WorkloadSpec:
        if self.storage is not None and self.kind != "StatefulSet":
            raise ValueError("storage needs kind StatefulSet (a Deployment's pods would share one claim)")
        if self.parallel_pods and self.kind != "StatefulSet":
            raise ValueError("parallel_pods applies to StatefulSets only")
        if self.external_traffic_policy is not None and self.service_type != "LoadBalancer":
            raise ValueError("external_traffic_policy applies to a LoadBalancer Service only")
        drain = self.drain
        if (
            drain is not None
            and self.service_type == "LoadBalancer"
            and drain.accept_seconds < LB_UNHEALTHY_AFTER_SECONDS
        ):
            raise ValueError(
                f"drain.accept_seconds {drain.accept_seconds} is shorter than the {LB_UNHEALTHY_AFTER_SECONDS} s the "
                "load balancer's health check takes to drop a node: new connections would reach closed listeners"
            )
        if self.public and self.clients:
            raise ValueError("a public workload admits every source: clients would be ignored")
        if not self.public and not self.clients:
            raise ValueError("no client may reach the workload: give clients or set public")
        paths = [v.path for v in self.scratch] + ([self.storage.path] if self.storage else [])
        paths += [self.config_dir] if self.config_dir else []
        if len(set(paths)) != len(paths):
            raise ValueError(f"a path is mounted twice: {paths}")
        if self.metrics_port is not None:
            if self.metrics_path is None:
                raise ValueError("metrics_port without metrics_path: nothing would scrape the port")
            if self.metrics_port == self.port:
                raise ValueError("metrics_port is the workload's port: leave metrics_port None to scrape `port`")
            if self.metrics_port_name == self.port_name:
                raise ValueError(f"metrics_port_name {self.metrics_port_name!r} is already the name of `port`")
        names = [self.port_name, *(p.name for p in self.extra_ports)]
        if self.metrics_port is not None:
            names.append(self.metrics_port_name)
        if len(set(names)) != len(names):
            raise ValueError(f"a port name is used twice: {names}")
        return self

    @property
    def exposed_port(self) -> int:
        """The Service's port."""
        return self.service_port or self.port

    @property
    def scrape_port(self) -> int | None:
        """The container port Prometheus scrapes (None: no metrics)."""
        if self.metrics_path is None:
            return None
        return self.metrics_port or self.port

    @property
    def scrape_port_name(self) -> str | None:
        """The name of the container port Prometheus scrapes (None: no metrics)."""
        if self.metrics_path is None:
            return None
        return self.metrics_port_name if self.metrics_port is not None else self.port_name


def _http(path: str, **timing: int) -> Probe:
    return Probe(check=HttpCheck(path=path), **timing)


# Every process runs as UID 10001, a user no node has (a low UID such as the images' own 1000, 101 or 999 can be a
# user of the host, which matters should a process ever escape its container), in the image's own group, which
# owns what the process reads: node images' `node` group (1000), nginx-unprivileged's `nginx` (101), and 1000 for
# redis (the Alpine image already uses GID 999). Their files are world-readable, and what they write lives on
# emptyDir and PVC volumes the pod's fsGroup owns. Traefik runs as 65532 (the UID of its Helm chart; the image
# itself has no user and runs as whoever the pod says).
_UID = 10001
_NODE_USER = {"run_as_user": _UID, "run_as_group": 1000}
_NODE_SCRATCH = (ScratchVolume(path="/tmp", size_limit="64Mi"),)
# The Node.js services register prom-client's default metrics (heap, RSS, event loop) and serve the registry at
# /metrics on their HTTP port; the heap alert reads them for every Node.js workload, the capacity rules the backend.
_NODE_METRICS = "/metrics"


# Traefik's drain: it keeps accepting for 30 s after SIGTERM, past the 25 s the load balancer's health check needs to
# drop its node (the ping, and so the readiness probe, answer 503 from the first second: --ping.terminatingStatusCode),
# then gives requests in flight 10 s (Traefik's default graceTimeOut), then closes what is left, the WebSockets too:
# their clients reconnect, through a node the load balancer still sends to.
_TRAEFIK_DRAIN = Drain(accept_seconds=30, finish_seconds=10)
# Entry points that serve clients (the ping is on `web`): `metrics` serves only Prometheus and closes at once.
_TRAEFIK_SERVING = ("web", "websecure")


def _traefik_life_cycle(drain: Drain) -> tuple[str, ...]:
    return tuple(
        arg
        for entry_point in _TRAEFIK_SERVING
        for arg in (
            f"--entryPoints.{entry_point}.transport.lifeCycle.requestAcceptGraceTimeout={drain.accept_seconds}s",
            f"--entryPoints.{entry_point}.transport.lifeCycle.graceTimeOut={drain.finish_seconds}s",
        )
    )


def _node_probes(path: str) -> Probes:
    # Node.js loads and compiles its bundle before listening; the startup probe grants 60 s for it so that the
    # liveness probe can stay strict (30 s of silence) once the server is up.
    return Probes(
        readiness=_http(path, period_seconds=5),
        liveness=_http(path, failure_threshold=3),
        startup=_http(path, period_seconds=2, failure_threshold=30),
    )


SPECS: Mapping[str, WorkloadSpec] = MappingProxyType(
    {
        # The API and WebSocket server. A StatefulSet: the pod-router addresses each pod by its stable name
        # (backend-0, backend-1) to keep an experiment's users on one pod. Pods do not coordinate with each other,
        # so they may start in parallel.
        "backend": WorkloadSpec(
            kind="StatefulSet",
            component="api",
            runtime="nodejs",
            port=3000,
            port_name="http",
            probes=_node_probes("/health"),
            **_NODE_USER,
            scratch=_NODE_SCRATCH,
            clients=("traefik", "pod-router"),
            parallel_pods=True,
            # Also the metric contract's hyperstudy_connected_users{role} and hyperstudy_active_experiments.
            metrics_path=_NODE_METRICS,
        ),
        # The single-page app, served by nginx-unprivileged on 8080; nginx keeps its pid and temp files in /tmp.
        # No metrics_path: nginx has no Prometheus endpoint and the pod runs no exporter sidecar; its memory is
        # watched through cAdvisor and kube-state-metrics, which need no scrape of the pod.
        "frontend": WorkloadSpec(
            kind="Deployment",
            component="frontend",
            runtime="none",
            port=8080,
            port_name="http",
            probes=Probes(readiness=_http("/", period_seconds=5), liveness=_http("/")),
            run_as_user=_UID,
            run_as_group=101,
            scratch=(ScratchVolume(path="/tmp", size_limit="64Mi"),),
            clients=("traefik",),
        ),
        # Session state and pub/sub. `redis-server` goes through the image's entrypoint (as non-root it only sets
        # umask 0077 for /data and execs); the plan's --maxmemory/--maxmemory-policy follow it. OrderedReady (no
        # parallel_pods): a future replica must not start before the primary is ready. No metrics_path: redis
        # speaks RESP, not Prometheus, and the pod runs no redis_exporter sidecar; cAdvisor and kube-state-metrics
        # cover its memory and restarts. One pod only: every redis-N would be an independent primary (no
        # replication is configured), and the one Service would spread the backends' keys across them.
        "redis": WorkloadSpec(
            kind="StatefulSet",
            component="cache",
            runtime="redis",
            max_replicas=1,
            port=6379,
            port_name="redis",
            probes=Probes(
                readiness=Probe(check=ExecCheck(command=("redis-cli", "ping")), period_seconds=5),
                liveness=Probe(check=ExecCheck(command=("redis-cli", "ping"))),
                # Loading the RDB snapshot from /data blocks PING with LOADING; give it a minute before liveness.
                startup=Probe(check=ExecCheck(command=("redis-cli", "ping")), period_seconds=2, failure_threshold=30),
            ),
            args=("redis-server",),
            run_as_user=_UID,
            run_as_group=1000,
            storage=Storage(volume="data", path="/data", size="1Gi"),
            clients=("backend", "pod-router"),
        ),
        # Routes each participant to the backend pod that holds the experiment.
        "pod-router": WorkloadSpec(
            kind="Deployment",
            component="router",
            runtime="nodejs",
            port=8080,
            port_name="http",
            probes=_node_probes("/health"),
            **_NODE_USER,
            scratch=_NODE_SCRATCH,
            clients=("traefik",),
            metrics_path=_NODE_METRICS,
        ),
        # The ingress controller: the only LoadBalancer. It watches Services, EndpointSlices and Ingresses, so it
        # keeps its service account token. Listens on 8000 (`web`) and 8443 (`websecure`), no NET_BIND_SERVICE; the
        # LoadBalancer exposes them as 80 and 443. `web` answers only the probes (ping) and redirects everything
        # else to https on 443 (the public port, not 8443: Let's Encrypt follows redirects to 443 only).
        # `websecure` is the one default entry point, so every Ingress router (cert-manager's HTTP-01 solver's
        # too, which Let's Encrypt reaches through that redirect) serves TLS there, and every response carries HSTS
        # from the `hsts` middleware of its file provider (the installation writes the file). No CRD provider: the
        # routes are Ingresses, so the cluster needs no traefik.io CRDs. Its request metrics get their own entry
        # point on 9100 (the port of Traefik's Helm chart), never public; the Service does not expose it:
        # Prometheus scrapes each pod directly. The namespace scope of its provider (and its IngressClass) depend on
        # the stack: HyperStudyAppArgs adds those arguments (components.app.traefik_scope_args).
        "traefik": WorkloadSpec(
            kind="Deployment",
            component="ingress",
            runtime="go",
            port=8000,
            port_name="web",
            service_port=80,
            extra_ports=(ServedPort(name="websecure", port=8443, service_port=443),),
            service_type="LoadBalancer",
            external_traffic_policy="Local",
            drain=_TRAEFIK_DRAIN,
            probes=Probes(readiness=_http("/ping", period_seconds=5), liveness=_http("/ping")),
            args=(
                "--entryPoints.web.address=:8000",
                "--entryPoints.web.http.redirections.entryPoint.to=:443",
                "--entryPoints.web.http.redirections.entryPoint.scheme=https",
                "--entryPoints.web.http.redirections.entryPoint.permanent=true",
                "--entryPoints.websecure.address=:8443",
                "--entryPoints.websecure.asDefault=true",
                "--entryPoints.websecure.http.tls=true",
                "--entryPoints.websecure.http.middlewares=hsts@file",
                "--entryPoints.metrics.address=:9100",
                *_traefik_life_cycle(_TRAEFIK_DRAIN),
                "--ping=true",
                "--ping.entryPoint=web",
                "--ping.terminatingStatusCode=503",
                "--metrics.prometheus=true",
                "--metrics.prometheus.entryPoint=metrics",
                "--providers.file.directory=/etc/traefik/dynamic",
                "--providers.kubernetesingress=true",
                "--global.checkNewVersion=false",
                "--global.sendAnonymousUsage=false",
            ),
            config_dir="/etc/traefik/dynamic",
            run_as_user=65532,
            run_as_group=65532,
            scratch=(ScratchVolume(path="/tmp", size_limit="64Mi"),),
            public=True,
            kubernetes_api=True,
            metrics_path="/metrics",
            metrics_port=9100,
            metrics_port_name="metrics",
        ),
        # Memory and capacity metrics for the dashboards.
        "metrics-service": WorkloadSpec(
            kind="Deployment",
            component="metrics",
            runtime="nodejs",
            port=9090,
            port_name="http",
            probes=_node_probes("/health"),
            **_NODE_USER,
            scratch=_NODE_SCRATCH,
            clients=("traefik",),
            metrics_path=_NODE_METRICS,
        ),
    }
)
