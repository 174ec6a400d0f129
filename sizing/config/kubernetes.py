"""`kubernetes` (namespace and API version) and `images` (one pinned image per workload)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field

from sizing.core.model import Model


class KubernetesConfig(Model):
    """Where and against which Kubernetes version the workloads are deployed."""

    namespace: str = Field(
        "hyperstudy", pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", description="namespace of the workloads"
    )
    version: str = Field(
        "1.33.0", pattern=r"^1\.[0-9]{2}\.[0-9]+$", description="Kubernetes version manifests are validated against"
    )


# An image reference with an explicit, pinned tag or digest: `latest` and untagged images are refused.
_IMAGE = r"^[a-z0-9]([-a-z0-9._/:]*[a-z0-9])?(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}|@sha256:[a-f0-9]{64})$"


def _pinned_image(value: object) -> object:
    if isinstance(value, str) and (value.endswith(":latest") or ("@" not in value and ":" not in value.split("/")[-1])):
        raise ValueError(f"{value!r} is not pinned: give an explicit tag other than latest, or a digest")
    return value


PinnedImage = Annotated[str, BeforeValidator(_pinned_image), Field(pattern=_IMAGE)]
