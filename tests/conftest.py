"""Shared test set-up: the recording Pulumi mocks, installed once before any program code runs, and fixtures."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pulumi
import pytest

from offline.mocks import RecordingMocks

ROOT = Path(__file__).resolve().parent.parent
PROJECT = "hyperstudy-infra"


MOCKS = RecordingMocks()
pulumi.runtime.set_mocks(MOCKS, project=PROJECT, stack="prod", preview=False)


@pytest.fixture
def mocks() -> RecordingMocks:
    """The recorder, emptied for this test."""
    MOCKS.resources.clear()
    return MOCKS


def pulumi_config(values: dict[str, Any], project: str = PROJECT) -> dict[str, str]:
    """Stack values (namespace stripped, as in the stack file) as the engine hands them to the program."""
    out = {}
    for key, value in values.items():
        full = key if ":" in key else f"{project}:{key}"
        out[full] = value if isinstance(value, str) else json.dumps(value)
    return out


@pytest.fixture(scope="session")
def prod_config():
    """The prod stack's validated config (optimized profile)."""
    from sizing.config import load_stack

    return load_stack("prod", ROOT)


@pytest.fixture(scope="session")
def prod_plan(prod_config):
    """The prod stack's sizing plan (optimized profile)."""
    from sizing.plan import build_plan

    return build_plan(prod_config, "prod")
