"""The app's public paths: which Service answers which path prefix on every public host. `ROUTES` are the built-in
ones, the default of the config's `ingress.routes` (restricted to the workloads a stack runs).

These are assumptions about the application, like its ports in `sizing/facts/workloads.py`, written down in one
place (and in the README, "Routes"): the single-page app is served by the frontend at `/`; the backend's REST API
(the capacity API included) lives under `/api/`; the realtime connection is Socket.IO at `/socket.io/`, which the
pod-router accepts and forwards to the backend pod holding the participant's experiment, over WebSocket or, where
a client cannot open one, HTTP long-polling (which needs every request of a session on the same pod-router pod:
hence the sticky cookie). Nothing else is public: metrics, health checks and metrics-service stay inside the cluster,
since no route's prefix covers them (`internal_paths` lists what must not be). Plain data: no pulumi import.
"""

from __future__ import annotations

from collections.abc import Iterable

from pydantic import Field

from sizing.core.model import Model
from sizing.facts.workloads import HttpCheck, WorkloadSpec


class Route(Model):
    """A path prefix of every public host and the workload (its Service's port) that answers it."""

    path: str = Field(pattern=r"^/([-a-z0-9._]+/?)*$", description="path prefix (Ingress pathType Prefix)")
    workload: str = Field(
        description="the workload whose Service answers it (a key of workloads, on its app.port_name)"
    )
    websocket: bool = Field(False, description="the path carries WebSocket upgrades (Traefik passes them through)")
    sticky: bool = Field(
        False, description="a client's requests stay on one pod (Traefik's sticky cookie on the Service)"
    )
    why: str = Field(description="what the path is for")


ROUTES: tuple[Route, ...] = (
    Route(path="/", workload="frontend", why="the single-page app (nginx): HTML, scripts, assets"),
    Route(path="/api", workload="backend", why="the REST API, the capacity API (/api/capacity/...) included"),
    Route(
        path="/socket.io",
        workload="pod-router",
        websocket=True,
        sticky=True,
        why="the realtime connection (Socket.IO), forwarded to the backend pod holding the experiment",
    ),
)

# The workload that serves the routes (the Ingress' controller): a routed workload must admit it (app.clients).
INGRESS_CONTROLLER = "traefik"
# The cookie that keeps a Socket.IO session on one pod-router pod (long-polling needs it; WebSocket does not mind).
STICKY_COOKIE = "hyperstudy_route"
# Traefik reads a Service's load-balancing options from these annotations on the Kubernetes Service.
_STICKY = "traefik.ingress.kubernetes.io/service.sticky.cookie"


def service_annotations(routes: Iterable[Route], workload: str) -> dict[str, str]:
    """Annotations `routes` need on a workload's Service: Traefik's sticky cookie, secure and HTTP-only."""
    if not any(route.sticky and route.workload == workload for route in routes):
        return {}
    return {
        _STICKY: "true",
        f"{_STICKY}.name": STICKY_COOKIE,
        f"{_STICKY}.secure": "true",
        f"{_STICKY}.httponly": "true",
        f"{_STICKY}.samesite": "lax",
    }


def internal_paths(spec: WorkloadSpec) -> tuple[str, ...]:
    """The HTTP paths a workload serves on its routed port to the cluster only: its metrics and its health checks
    (a probe of the root checks the page itself, which is public anyway)."""
    paths = [spec.metrics_path] if spec.metrics_path and spec.scrape_port == spec.port else []
    for probe in (spec.probes.readiness, spec.probes.liveness, spec.probes.startup):
        if probe is not None and isinstance(probe.check, HttpCheck) and probe.check.path != "/":
            paths.append(probe.check.path)
    return tuple(dict.fromkeys(paths))


def covers(prefix: str, path: str) -> bool:
    """Whether an Ingress `Prefix` path matches `path`, element by element: `/api` matches `/api/x`, not `/apix`."""
    parts, wanted = [p for p in prefix.split("/") if p], [p for p in path.split("/") if p]
    return wanted[: len(parts)] == parts
