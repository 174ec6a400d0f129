"""sizing/config/reference.py: the generated config reference and stack-file JSON Schema are current, and the
schema accepts and refuses stack files as `load_stack` does (an editor's red squiggle means `plan` would refuse)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from sizing.config import reference
from sizing.config.loader import load_stack, project_name
from sizing.core.errors import ConfigError
from tests.sizing.stacks import ROOT

NS = project_name(ROOT)
VALIDATOR = jsonschema.Draft202012Validator(reference.stack_file_schema(NS))


def test_the_committed_reference_and_schema_are_what_the_models_generate():
    stale = [str(path) for path, text in reference.outputs(ROOT).items() if (ROOT / path).read_text() != text]
    assert stale == [], "run `make reference`"


def test_make_reference_check_fails_on_a_stale_file_and_names_it(tmp_path, monkeypatch, capsys):
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    monkeypatch.setattr(reference, "ROOT", tmp_path)
    assert reference.main(["--write"]) == 0
    assert reference.main([]) == 0
    schema = tmp_path / reference.SCHEMA_PATH
    schema.write_text(schema.read_text().replace('"minLength": 1', '"minLength": 2', 1))
    assert reference.main([]) == 1
    assert capsys.readouterr().err == "stale: schema/stack.schema.json: run `make reference`\n"


def _stack(name: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / f"Pulumi.{name}.yaml").read_text())


@pytest.mark.parametrize("stack", ["prod", "staging"])
def test_every_shipped_stack_file_is_valid_under_the_schema(stack):
    data = _stack(stack)
    assert list(VALIDATOR.iter_errors(data)) == []
    # monitoring.prometheus_operator is required by its model and filled in by a before-validator when omitted:
    # the schema must not demand it.
    assert "prometheus_operator" not in data["config"].get(f"{NS}:monitoring", {})


def _schema_refuses(data: dict[str, Any]) -> bool:
    return any(True for _ in VALIDATOR.iter_errors(data))


def _loader_refuses(data: dict[str, Any], tmp_path: Path) -> bool:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.x.yaml").write_text(yaml.safe_dump(data))
    try:
        load_stack("x", tmp_path)
    except ConfigError:
        return True
    return False


def _with(path: str, value: Any) -> dict[str, Any]:
    """prod's stack file with the namespace's dotted `path` set to `value` (None: the key removed)."""
    data = copy.deepcopy(_stack("prod"))
    top, *rest = path.split(".")
    node = data["config"]
    key = f"{NS}:{top}"
    for part in rest:
        node, key = node.setdefault(key, {}), part
    if value is None:
        del node[key]
    else:
        node[key] = value
    return data


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("profile", "fastest"),  # not an enum member
        ("workloads.backend.replicas", "two"),  # a string for an integer
        ("workloads.frontend.memory.optimized.limit", "256MB"),  # not a Kubernetes quantity
        ("workloads.frontend.surge", 1),  # an unknown key
        ("nodes.machine_type", None),  # a required key removed
        ("slack_webhook_url", "https://hooks.example/T0"),  # a secret in plaintext
        ("monitoring.alerts.memory_near_limit", {"threshold": 0.9, "for": "5 minutes"}),  # not a duration
    ],
)
def test_the_schema_refuses_what_the_loader_refuses(path, value, tmp_path):
    data = _with(path, value)
    assert _loader_refuses(data, tmp_path)
    assert _schema_refuses(data)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("workloads.frontend.memory.optimized.limit", "0.25Gi"),  # a quantity in another unit
        ("workloads.frontend.cpu_request", "0.1"),  # cores as a decimal
        ("slack_webhook_url", {"secure": "v1:abc"}),  # ciphertext under a key no model names
    ],
)
def test_the_schema_accepts_what_the_loader_accepts(path, value, tmp_path):
    data = _with(path, value)
    assert not _schema_refuses(data)
    if not (isinstance(value, dict) and "secure" in value):  # a secret only a receiver may name
        assert not _loader_refuses(data, tmp_path)


def test_other_namespaces_keys_are_left_to_their_providers():
    data = _stack("prod")
    data["config"]["gcp:project"] = "my-project"
    data["config"]["kubernetes:context"] = "gke_x"
    assert not _schema_refuses(data)


def test_the_reference_lists_every_leaf_key_of_the_config_with_its_description():
    text = reference.markdown(NS)
    for line in (
        "| `nodes.surge_nodes` | integer |  | `1` |",
        "| `workloads.<name>.cpu_request` | quantity | yes |  | CPU request per pod (Kubernetes quantity) |",
        "| `capacity.schedule[].name` |",
        "| `monitoring.prometheus_operator` | boolean |  |  |",
    ):
        assert line in text, line
    assert "## `monitoring`" in text and text.count("\n## `") == len(reference.values_schema()["properties"])
