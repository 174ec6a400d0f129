"""The program's config loader reads, through Pulumi, exactly what `python -m sizing` reads from the stack file."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from components.stack_config import load_program_config
from offline.render import stack_config_values
from sizing.config import load_stack
from sizing.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture
def engine_config():
    """Set the engine's config for one test, as `pulumi up` would pass it, and clear it afterwards."""

    def apply(values: dict[str, str]) -> None:
        pulumi.runtime.set_all_config(values)

    yield apply
    pulumi.runtime.set_all_config({})


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("profile", ["optimized", "baseline"])
def test_pulumi_config_gives_the_same_model_as_the_stack_file(engine_config, stack, profile):
    engine_config(stack_config_values(stack, ROOT, profile))
    assert load_program_config("hyperstudy-infra") == load_stack(stack, ROOT, profile)


def test_a_misspelt_key_is_refused_not_ignored(engine_config):
    values = stack_config_values("prod", ROOT)
    values["hyperstudy-infra:proflie"] = "baseline"
    engine_config(values)
    with pytest.raises(ConfigError) as raised:
        load_program_config("hyperstudy-infra")
    assert str(raised.value) == "hyperstudy-infra:proflie: unknown key"


def test_other_namespaces_belong_to_their_providers(engine_config):
    values = stack_config_values("prod", ROOT)
    values["kubernetes:context"] = "somewhere"
    engine_config(values)
    assert load_program_config("hyperstudy-infra") == load_stack("prod", ROOT)
