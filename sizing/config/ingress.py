"""How the public reaches the stack, as config: its host names, which path goes to which workload (`routes`, by
default the built-in ones of `sizing/facts/routes.py` to the workloads the stack runs), the ACME account its
certificates come from, whether the program installs cert-manager, and the sizes of what cert-manager runs on the
pool.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from sizing.config.chart_sizes import ChartComponents, ContainerSizes, component
from sizing.core.errors import PathError
from sizing.core.model import Model
from sizing.facts.charts import CERT_MANAGER
from sizing.facts.routes import ROUTES, Route

# Let's Encrypt's directories: staging issues untrusted certificates under far higher rate limits, for stacks whose
# certificates nobody's browser needs to trust.
ACME_SERVERS = {
    "production": "https://acme-v02.api.letsencrypt.org/directory",
    "staging": "https://acme-staging-v02.api.letsencrypt.org/directory",
}

# A fully qualified DNS name of at least two labels, lowercase: what HTTP-01 can prove (no wildcards, no IPs).
_HOST = re.compile(r"(?=.{1,253}$)([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?\.)+[a-z]([-a-z0-9]{0,61}[a-z0-9])?")


def _host(value: str) -> str:
    if not _HOST.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a host name a certificate can be issued for over HTTP-01 "
            "(lowercase DNS labels separated by dots, no wildcard, no IP address, no scheme or path)"
        )
    return value


Host = Annotated[str, AfterValidator(_host)]


class AcmeConfig(Model):
    """The ACME account (Let's Encrypt) certificates are issued by over HTTP-01."""

    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", description="contact for expiry and account notices")
    server: Literal["production", "staging"] = Field(
        "production", description="Let's Encrypt directory: staging issues untrusted certificates, for trials"
    )

    @property
    def directory(self) -> str:
        return ACME_SERVERS[self.server]


class CertManagerComponents(ChartComponents):
    """Every container cert-manager runs on the pool, by the name the plan lists it under."""

    cert_manager: ContainerSizes = component(
        "the cert-manager controller", "20m", "64Mi", "128Mi", alias="cert-manager"
    )
    cert_manager_webhook: ContainerSizes = component(
        "cert-manager's admission webhook", "10m", "32Mi", "64Mi", alias="cert-manager-webhook"
    )
    cert_manager_cainjector: ContainerSizes = component(
        "cert-manager's CA injector", "10m", "64Mi", "128Mi", alias="cert-manager-cainjector"
    )
    acme_solver: ContainerSizes = component(
        "the HTTP-01 solver pod cert-manager starts in the app's namespace while a certificate is issued or renewed, "
        "one per host",
        "10m",
        "64Mi",
        "64Mi",
        alias="acme-solver",
    )
    cert_manager_startupapicheck: ContainerSizes = component(
        "cert-manager's startup API check, the post-install hook Job the release waits for (one pod while the chart "
        "installs)",
        "10m",
        "32Mi",
        "64Mi",
        alias="cert-manager-startupapicheck",
    )


class IngressConfig(Model):
    """The stack's public entry: host names, certificates, and cert-manager."""

    hosts: list[Host] = Field(
        default_factory=list,
        description="public host names the app answers on, each with a certificate (empty: no public route)",
    )
    routes: tuple[Route, ...] = Field(
        (),
        description="which Service answers which path prefix on every host (default: the built-in routes of "
        "sizing/facts/routes.py to the workloads the stack runs); each names a workload of the stack, no path twice",
    )
    acme: AcmeConfig | None = Field(None, description="the ACME account certificates come from (required with hosts)")
    install_cert_manager: bool = Field(
        True,
        description="install cert-manager (cluster-wide, with its CRDs) with the program; false on a cluster that "
        "already runs it (cert-manager 1.15 or later)",
    )
    cert_manager_chart_version: str = Field(
        "v1.18.6", pattern=r"^v[0-9]+\.[0-9]+\.[0-9]+$", description="jetstack/cert-manager chart version, pinned"
    )
    hsts_max_age_seconds: int = Field(
        31536000,
        ge=0,
        description="Strict-Transport-Security max-age on every HTTPS response (0: no HSTS header)",
    )
    components: CertManagerComponents = Field(
        default_factory=CertManagerComponents,
        description="sizes of cert-manager's containers and of its HTTP-01 solver pods, planned like the app",
    )

    @model_validator(mode="after")
    def _hosts_have_an_issuer(self) -> IngressConfig:
        if len(set(self.hosts)) != len(self.hosts):
            raise PathError("hosts", "names a host twice")
        seen: dict[str, int] = {}
        for index, route in enumerate(self.routes):
            # A Prefix path matches element by element: `/api/` and `/api` are the same prefix.
            prefix = route.path.rstrip("/") or "/"
            if prefix in seen:
                raise PathError(f"routes.{index}.path", f"{route.path!r} is routed twice (also routes.{seen[prefix]})")
            seen[prefix] = index
        if self.hosts and self.acme is None:
            raise PathError("acme", "required key is missing (who issues the hosts' certificates)")
        self.components.check_against(CERT_MANAGER)
        return self


def default_routes(workloads: Iterable[str]) -> tuple[Route, ...]:
    """The built-in routes to the workloads a stack runs: `ingress.routes` when the stack gives none."""
    running = set(workloads)
    return tuple(route for route in ROUTES if route.workload in running)
