"""The program's config loader reads, through Pulumi, exactly what `python -m sizing` reads from the stack file."""

from __future__ import annotations

from pathlib import Path

import pulumi
import pytest

from components.stack_config import load_program_config, secret_values
from offline.render import SECRET_STAND_IN, stack_config_values
from sizing.config.loader import load_stack
from sizing.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
STACKS = sorted(p.name.removeprefix("Pulumi.").removesuffix(".yaml") for p in ROOT.glob("Pulumi.*.yaml"))


@pytest.fixture
def engine_config():
    """Set the engine's config for one test, as `pulumi up` would pass it, and clear it afterwards."""

    def apply(values: dict[str, str], secrets: list[str] | None = None) -> None:
        pulumi.runtime.set_all_config(values, secrets or [])

    yield apply
    pulumi.runtime.set_all_config({}, [])


@pytest.mark.parametrize("stack", STACKS)
@pytest.mark.parametrize("profile", ["optimized", "baseline"])
def test_pulumi_config_gives_the_same_model_as_the_stack_file(engine_config, stack, profile):
    engine_config(*stack_config_values(stack, ROOT, profile))
    program = load_program_config("hyperstudy-infra")
    assert program.model_dump() == load_stack(stack, ROOT, profile).model_dump()
    # The engine holds every secret a receiver reads (the render stands in for the ones the file lacks).
    assert program.missing_secrets() == ()


def test_a_misspelt_key_is_refused_not_ignored(engine_config):
    values, secrets = stack_config_values("prod", ROOT)
    values["hyperstudy-infra:proflie"] = "baseline"
    engine_config(values, secrets)
    with pytest.raises(ConfigError) as raised:
        load_program_config("hyperstudy-infra")
    assert str(raised.value) == "hyperstudy-infra:proflie: unknown key (did you mean profile?)"


def test_other_namespaces_belong_to_their_providers(engine_config):
    values, secrets = stack_config_values("prod", ROOT)
    values["kubernetes:context"] = "somewhere"
    engine_config(values, secrets)
    assert load_program_config("hyperstudy-infra").model_dump() == load_stack("prod", ROOT).model_dump()


def test_a_receiver_secret_the_engine_holds_in_plaintext_is_refused(engine_config):
    values, secrets = stack_config_values("prod", ROOT)
    engine_config(values, [key for key in secrets if not key.endswith(":slack_webhook_url")])
    with pytest.raises(ConfigError) as raised:
        load_program_config("hyperstudy-infra")
    assert raised.value.key == "hyperstudy-infra:slack_webhook_url"
    assert "plaintext" in raised.value.problem


def test_a_receiver_secret_not_set_stops_the_program_by_name(engine_config):
    values, secrets = stack_config_values("prod", ROOT)
    del values["hyperstudy-infra:pagerduty_routing_key"]
    engine_config(values, [key for key in secrets if not key.endswith(":pagerduty_routing_key")])
    config = load_program_config("hyperstudy-infra")
    with pytest.raises(ConfigError) as raised:
        secret_values(config)
    assert str(raised.value) == (
        "hyperstudy-infra:pagerduty_routing_key: secret not set: run "
        "`pulumi config set --secret pagerduty_routing_key <value>` (a receiver reads it)"
    )


@pulumi.runtime.test
def test_receiver_secrets_reach_the_program_as_secret_outputs(engine_config, ran):
    values, secrets = stack_config_values("prod", ROOT)
    engine_config(values, secrets)
    outputs = secret_values(load_program_config("hyperstudy-infra"))
    # The receivers' credentials and the heartbeat's URL.
    assert sorted(outputs) == ["heartbeat_url", "pagerduty_routing_key", "slack_webhook_url"]

    def check(args):
        *flags, value = args
        assert flags == [True, True, True] and value == SECRET_STAND_IN
        ran.append("secret")

    flags = [output.is_secret() for output in outputs.values()]
    return pulumi.Output.all(*flags, outputs["slack_webhook_url"]).apply(check)
