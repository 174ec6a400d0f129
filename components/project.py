"""The GCP APIs the program needs, enabled in the stack's project before anything that needs them is created.

A new project has none of them on: the first `pulumi up` would fail on the cluster, the node service account, its
IAM bindings or the static address with "API has not been used in project". Each is a `gcp.projects.Service` that is
never disabled on destroy: other resources of the project may use the API too, and disabling it would break them.
"""

from __future__ import annotations

import pulumi
import pulumi_gcp as gcp
from pydantic import Field

from components.cluster import project_id
from sizing.core.model import Model

# What the program calls: the cluster and node pool; networks, the router and NAT, the static address; the node
# service account; the project IAM policy its roles are bound in.
REQUIRED_APIS: tuple[str, ...] = (
    "container.googleapis.com",
    "compute.googleapis.com",
    "iam.googleapis.com",
    "cloudresourcemanager.googleapis.com",
)


class ProjectApisArgs(Model):
    """Which project, and which APIs."""

    project: str | None = Field(None, description="GCP project (None: the gcp provider's project, gcp:project)")
    apis: tuple[str, ...] = Field(REQUIRED_APIS, min_length=1, description="service names to enable")


class ProjectApis(pulumi.ComponentResource):
    """The enabled APIs: give the component as `depends_on` to whatever needs them."""

    services: dict[str, gcp.projects.Service]

    def __init__(self, name: str, args: ProjectApisArgs, opts: pulumi.ResourceOptions | None = None) -> None:
        super().__init__("hyperstudy:project:ProjectApis", name, None, opts)
        project = project_id(args.project)
        self.services = {
            api: gcp.projects.Service(
                f"{name}-{api.split('.', 1)[0]}",
                project=project,
                service=api,
                # Kept on destroy: the project (and other stacks in it) may rely on the API.
                disable_on_destroy=False,
                disable_dependent_services=False,
                opts=pulumi.ResourceOptions(parent=self),
            )
            for api in args.apis
        }
        self.register_outputs({"apis": list(args.apis)})
