"""The project's APIs under mocks: each enabled, none disabled on destroy; and in the program, before what needs it."""

from __future__ import annotations

from pathlib import Path

import pulumi

from components.project import REQUIRED_APIS, ProjectApis, ProjectApisArgs
from offline.render import run_program

ROOT = Path(__file__).resolve().parents[2]
SERVICE = "gcp:projects/service:Service"


@pulumi.runtime.test
def test_every_api_is_enabled_and_kept_on_destroy(mocks, ran):
    component = ProjectApis("hyperstudy", ProjectApisArgs(project="my-project"))
    assert sorted(component.services) == sorted(REQUIRED_APIS)

    def check(_):
        services = mocks.of_type(SERVICE)
        assert sorted(s.inputs["service"] for s in services) == sorted(REQUIRED_APIS)
        for s in services:
            assert s.inputs["project"] == "my-project"
            assert s.inputs["disableOnDestroy"] is False and s.inputs["disableDependentServices"] is False
        ran.append("apis")

    return pulumi.Output.all(*(s.urn for s in component.services.values())).apply(check)


def test_nothing_in_gcp_is_created_before_the_apis_it_needs(mocks):
    rendered = run_program("prod", ROOT, mocks=mocks)
    apis = mocks.of_type(SERVICE)
    others = [r for r in rendered.gcp_resources() if r.typ != SERVICE]
    assert len(apis) == len(REQUIRED_APIS) and others
    for resource in others:
        for api in apis:
            assert mocks.waits_for(resource, api), f"{resource.typ} {resource.name} does not wait for {api.name}"
    # The guard: the relation is not everywhere (the APIs wait for nothing of the program).
    assert not any(mocks.waits_for(api, resource) for api in apis for resource in others)
