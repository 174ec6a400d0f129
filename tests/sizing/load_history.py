"""Synthetic load histories for the calibration tests: backend pods whose working set follows known coefficients.

Experiments start and end on each pod (sessions of 20-90 minutes, idle gaps between them), participants switch video
on and off within a session, experimenters come and go; the working set is the true formula plus Gaussian noise,
with GC spikes and container restarts (the working set drops to a cold start for a few minutes) as outliers. All of
it is drawn from a seeded generator, so every run sees the same history.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sizing.core.model import ROLES
from sizing.core.quantity import MIB_BYTES
from sizing.observe.calibration import EXPORT_FORMAT

# Not the config's coefficients (100 / 15 / 8 / 25): the fit must find these.
TRUE = {
    "base_mib": 120.0,
    "per_role_mib": {
        "participant_video": 18.0,
        "participant_no_video": 7.0,
        "experimenter": 30.0,
    },
}


@dataclass
class PodHistory:
    """One pod's users per role and working set (MiB) on a grid of `step` seconds, oldest first."""

    pod: str
    users: dict[str, list[int]] = field(default_factory=lambda: {role: [] for role in ROLES})
    working_set_mib: list[float] = field(default_factory=list)
    outliers: int = 0


def _sessions(rng: random.Random, points: int, step: float) -> Iterator[tuple[int, int, dict[str, int]]]:
    """(start, end, users at start) of each experiment on a pod: idle gaps, then a session of a random shape."""
    at = rng.randrange(0, int(1800 / step))
    while at < points:
        length = int(rng.uniform(20, 90) * 60 / step)
        shape = {
            "participant_video": rng.randint(0, 12),
            "participant_no_video": rng.randint(0, 8),
            "experimenter": rng.randint(1, 3),
        }
        yield at, min(at + length, points), shape
        at += length + int(rng.uniform(5, 60) * 60 / step)


def pod_history(
    pod: str,
    points: int,
    step: float,
    seed: int,
    coefficients: dict[str, Any] = TRUE,
    noise_mib: float = 2.0,
    outliers: bool = True,
    ar_rho: float = 0.0,
) -> PodHistory:
    """A pod's history; `ar_rho` makes the noise an AR(1) process of the same spread (memory that drifts for minutes,
    as a real working set does), 0 independent samples."""
    rng = random.Random(seed)
    history = PodHistory(pod)
    users = {role: [0] * points for role in ROLES}
    for start, end, shape in _sessions(rng, points, step):
        for i in range(start, end):
            # Every 10 minutes some participants turn their video on or off; an experimenter steps out now and then.
            if (i - start) % max(1, int(600 / step)) == 0 and i > start:
                moved = rng.randint(-2, 2)
                moved = max(-shape["participant_video"], min(moved, shape["participant_no_video"]))
                shape = {
                    **shape,
                    "participant_video": shape["participant_video"] + moved,
                    "participant_no_video": shape["participant_no_video"] - moved,
                    "experimenter": max(1, min(3, shape["experimenter"] + rng.choice((-1, 0, 0, 1)))),
                }
            for role in ROLES:
                users[role][i] = shape[role]
    history.users = users
    base, per_role = coefficients["base_mib"], coefficients["per_role_mib"]
    restart_left = 0
    drift = 0.0
    for i in range(points):
        drift = ar_rho * drift + (1 - ar_rho**2) ** 0.5 * rng.gauss(0, noise_mib)
        value = base + sum(per_role[role] * users[role][i] for role in ROLES) + drift
        if outliers and restart_left == 0 and rng.random() < 0.0005:
            restart_left = int(300 / step)  # a restart: a cold process for five minutes
        if restart_left:
            restart_left -= 1
            value = base * 0.6
            history.outliers += 1
        elif outliers and rng.random() < 0.01:
            value += rng.uniform(20, 60)  # a GC spike
            history.outliers += 1
        history.working_set_mib.append(max(value, 1.0))
    return history


def export(histories: list[PodHistory], namespace: str, start: float, step: float) -> dict[str, Any]:
    """The histories as `fit --save` writes them (range query results), for the offline path."""

    def matrix(values: dict[str, list[float]]) -> list[dict[str, Any]]:
        return [
            {
                "metric": {"namespace": namespace, "pod": pod},
                "values": [[start + i * step, repr(float(v))] for i, v in enumerate(series)],
            }
            for pod, series in values.items()
        ]

    results = {"working_set": matrix({h.pod: [v * MIB_BYTES for v in h.working_set_mib] for h in histories})}
    for role in ROLES:
        results[role] = matrix({h.pod: h.users[role] for h in histories})
    points = len(histories[0].working_set_mib)
    return {
        "format": EXPORT_FORMAT,
        "namespace": namespace,
        "start": start,
        "end": start + (points - 1) * step,
        "step": step,
        "queries": {},
        "results": results,
    }


# examples/fit-export.json: eight days (every weekday's sessions) of two backend pods at a 15-minute step, memory
# drifting for minutes (AR(1)), in prod's namespace, dated before the golden epoch. `python -m sizing fit --stack
# prod --from examples/fit-export.json` reads it; `python -m tests.sizing.load_history` writes it anew.
SAMPLE_EXPORT = Path(__file__).resolve().parents[2] / "examples" / "fit-export.json"
SAMPLE_DAYS, SAMPLE_STEP_S, SAMPLE_END = 8, 900.0, 1796083200.0


def sample_export() -> dict[str, Any]:
    from sizing.config.loader import load_stack
    from sizing.observe.calibration import queries

    config = load_stack("prod", SAMPLE_EXPORT.parents[1])
    points = int(SAMPLE_DAYS * 86400 / SAMPLE_STEP_S)
    histories = [pod_history(f"backend-{i}", points, SAMPLE_STEP_S, seed=16 + i, ar_rho=0.9) for i in range(2)]
    start = SAMPLE_END - (points - 1) * SAMPLE_STEP_S
    data = export(histories, config.kubernetes.namespace, start, SAMPLE_STEP_S)
    return {**data, "queries": queries(config)}


if __name__ == "__main__":
    SAMPLE_EXPORT.write_text(json.dumps(sample_export()) + "\n", encoding="utf-8")
    print(f"wrote {SAMPLE_EXPORT}")
