"""The pure readers behind the policies: runtime memory syntaxes, image references, label selectors."""

from __future__ import annotations

import ast
import operator
from pathlib import Path

import pytest

from policy import runtime_memory
from policy.kube import selector_matches
from policy.policies import image_pin_problem
from policy.runtime_memory import GO_MEMLIMIT, NODE_HEAP, REDIS_MAXMEMORY, RuntimeSetting, runtime_settings
from sizing.core import quantity

MIB = 1024 * 1024  # written out: the tests' own reading of a MiB, not the code's


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (
            {"env": [{"name": "NODE_OPTIONS", "value": "--enable-source-maps --max-old-space-size=384"}]},
            [RuntimeSetting(NODE_HEAP, "--max-old-space-size=384", "env NODE_OPTIONS", 384 * MIB)],
        ),
        (
            {"command": ["node", "--max_old_space_size", "96", "server.js"]},
            [RuntimeSetting(NODE_HEAP, "--max_old_space_size 96", "command", 96 * MIB)],
        ),
        (
            {"command": ["sh", "-c", "exec redis-server --maxmemory 89mb --maxmemory-policy allkeys-lru"]},
            [RuntimeSetting(REDIS_MAXMEMORY, "--maxmemory 89mb", "command", 89 * MIB)],
        ),
        ({"args": ["--maxmemory", "100m"]}, [RuntimeSetting(REDIS_MAXMEMORY, "--maxmemory 100m", "args", 10**8)]),
        ({"args": ["--maxmemory", "1KB"]}, [RuntimeSetting(REDIS_MAXMEMORY, "--maxmemory 1KB", "args", 1024)]),
        ({"args": ["--maxmemory", "2G"]}, [RuntimeSetting(REDIS_MAXMEMORY, "--maxmemory 2G", "args", 2 * 10**9)]),
        (
            {"args": ["--maxmemory", "89MiB"]},
            [
                RuntimeSetting(
                    REDIS_MAXMEMORY, "--maxmemory 89MiB", "args", problem="is not a Redis memory value (e.g. 89mb)"
                )
            ],
        ),
        (
            {"env": [{"name": "GOMEMLIMIT", "value": "115MiB"}]},
            [RuntimeSetting(GO_MEMLIMIT, "GOMEMLIMIT=115MiB", "env", 115 * MIB)],
        ),
        (
            {"env": [{"name": "GOMEMLIMIT", "value": "2GiB"}]},
            [RuntimeSetting(GO_MEMLIMIT, "GOMEMLIMIT=2GiB", "env", 2 << 30)],
        ),
        (
            {"env": [{"name": "GOMEMLIMIT", "value": "1000"}]},
            [RuntimeSetting(GO_MEMLIMIT, "GOMEMLIMIT=1000", "env", 1000)],
        ),
        ({"env": [{"name": "GOMEMLIMIT", "value": "off"}]}, []),
        # From a ConfigMap: not in the program, so nothing to read.
        ({"env": [{"name": "GOMEMLIMIT", "valueFrom": {"configMapKeyRef": {"name": "x", "key": "y"}}}]}, []),
        ({"args": ["--maxmemory-policy", "allkeys-lru"]}, []),
    ],
)
def test_runtime_settings_follow_each_runtimes_syntax(container, expected):
    assert runtime_settings(container) == expected


_OPERATORS = {ast.Mult: operator.mul, ast.Pow: operator.pow, ast.LShift: operator.lshift, ast.Add: operator.add}


def _number(node: ast.expr) -> int | None:
    """The value of a constant integer expression (`1024 * 1024`, `1 << 20`, `2**20`); None for anything else."""
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        left, right = _number(node.left), _number(node.right)
        if left is not None and right is not None:
            return _OPERATORS[type(node.op)](left, right)
    return None


def test_the_mib_is_sizings_not_a_second_constant():
    """Node.js heap sizes are MiB as the sizing plan counts them: one constant (sizing.core.quantity.MIB_BYTES), so the
    policy cannot drift from the plan it checks."""
    tree = ast.parse(Path(runtime_memory.__file__).read_text(encoding="utf-8"))
    own = [
        ast.unparse(node)
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and _number(node.value) == 1024 * 1024
    ]
    assert own == [], "runtime_memory defines its own MiB"
    imported = {
        alias.name
        for node in tree.body
        if isinstance(node, ast.ImportFrom) and node.module == "sizing.core.quantity"
        for alias in node.names
    }
    assert "MIB_BYTES" in imported
    assert runtime_memory.MIB == quantity.MIB_BYTES == MIB  # the name policy.policies reads stays the same size


def test_zero_is_no_ceiling_for_redis_and_node_but_a_limit_for_go():
    assert RuntimeSetting(REDIS_MAXMEMORY, "--maxmemory 0", "args", 0).unlimited
    assert RuntimeSetting(NODE_HEAP, "--max-old-space-size=0", "args", 0).unlimited
    assert not RuntimeSetting(GO_MEMLIMIT, "GOMEMLIMIT=0", "env", 0).unlimited


@pytest.mark.parametrize(
    ("image", "problem"),
    [
        ("ghcr.io/hyperstudy/backend:2.14.0", None),
        ("redis:7.4.2-alpine", None),
        ("localhost:5000/app:1.0", None),
        ("ghcr.io/hyperstudy/backend@sha256:" + "0" * 64, None),
        ("ghcr.io/hyperstudy/backend:2.14.0@sha256:" + "f" * 64, None),
        ("ghcr.io/hyperstudy/backend:latest", "uses the tag latest, which moves"),
        ("redis", "has no tag, so it means latest"),
        ("localhost:5000/app", "has no tag, so it means latest"),
        ("app:", "has an empty tag"),
        ("app@sha256:xyz", "has a malformed digest sha256:xyz"),
        ("", "is absent"),
        (None, "is absent"),
    ],
)
def test_image_pins(image, problem):
    assert image_pin_problem(image) == problem


LABELS = {"app": "web", "tier": "front"}


@pytest.mark.parametrize(
    ("selector", "selects"),
    [
        ({"matchLabels": {"app": "web"}}, True),
        ({"matchLabels": {"app": "api"}}, False),
        ({}, True),  # policy/v1: an empty selector selects every pod of the namespace
        (None, False),  # and a missing one none
        ({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web", "api"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}, True),
        ({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}, False),
        ({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": ["a"]}]}, True),
        ({"matchExpressions": [{"key": "app", "operator": "Matches", "values": ["web"]}]}, False),
    ],
)
def test_label_selectors(selector, selects):
    assert selector_matches(selector, LABELS) is selects
