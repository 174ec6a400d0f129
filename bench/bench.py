"""`make bench`: the figures the issues set targets for, measured the way users meet them.

- `python -m sizing plan --stack prod` as a whole process (target ≤ 0.5 s: the CLI keeps heavy imports out).
- `python -m sizing recommend --stack prod` as a whole process (target ≤ 0.5 s).
- `build_plan` on a synthetic stack of 200 workloads with up to 50 replicas each (target ≤ 1 s), and `recommend`
  on it across the whole catalogue (target ≤ 2 s).
- the offline render of prod as a whole process, next to a bare `import pulumi_kubernetes.apps.v1,
  pulumi_gcp.container` in the same run (target: render ≤ 2× the bare import), and next to an import that
  also loads the provider classes the program registers (the floor any render of this program pays).
- `python -m sizing rightsize --stack prod` as a whole process against a real Prometheus server (Debian's, from
  .bin/) holding 14 days of usage of every container of prod (tests/sizing/usage_history.py), with the number of
  queries it sends (target ≤ 10 s; one query per metric, not per container).
- with `--suites` (`make bench SUITES=1`, minutes): the fast inner loop (`make unit`) and the whole suite
  (`pytest -n 2`), each once, with the number of tests each ran.
"""

from __future__ import annotations

import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sizing.config.stack import StackConfig  # noqa: E402
from sizing.plan.build import build_plan, demand  # noqa: E402
from sizing.plan.pools import recommend  # noqa: E402
from tests.sizing.stacks import runnable  # noqa: E402


def _process_seconds(argv: list[str], runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return times


def synthetic_stack(workloads: int = 200, max_replicas: int = 50, seed: int = 7) -> StackConfig:
    """A large valid stack: one formula-sized workload (the backend, with its built-in facts) and `workloads - 1`
    statically sized ones (generic facts of their runtime, as the tests' synthetic stacks get them)."""
    rng = random.Random(seed)
    specs: dict[str, dict] = {
        "backend": {
            "replicas": max_replicas,
            "cpu_request": "250m",
            "runtime": "nodejs",
            "sized_by": "formula",
            "memory": {"baseline": {"request": "512Mi", "limit": "1Gi"}},
        },
    }
    for i in range(workloads - 1):
        request = rng.choice([32, 64, 128, 256, 512])
        limit = request * rng.choice([1, 2, 4])
        size = {"request": f"{request}Mi", "limit": f"{limit}Mi"}
        specs[f"service-{i:03d}"] = {
            "replicas": rng.randint(1, max_replicas),
            "cpu_request": f"{rng.choice([10, 25, 50, 100])}m",
            # Node.js needs its native memory beside the heap (runtime.nodejs_native_mib): small limits run Go.
            "runtime": runtime
            if (runtime := rng.choice(["nodejs", "go", "none"])) != "nodejs" or limit >= 512
            else "go",
            "memory": {"optimized": size, "baseline": {"request": f"{2 * request}Mi", "limit": f"{2 * limit}Mi"}},
        }
    return StackConfig.model_validate(
        {
            "capacity": {"load": {"typical": {"small": 1}, "peak": {"medium": 1}}},
            **runnable(specs),
            "nodes": {"machine_type": "e2-standard-8", "overhead": {"memory": "1Gi", "cpu": "400m"}},
        }
    )


# The provider classes the program registers: importing them is the floor of any run of the program.
_PROVIDER_CLASSES = (
    "import pulumi_gcp as gcp, pulumi_kubernetes as k8s; "
    "gcp.container.Cluster, gcp.container.NodePool, gcp.compute.RouterNat, gcp.serviceaccount.Account, "
    "gcp.projects.IAMMember, k8s.apps.v1.Deployment, k8s.core.v1.Service, k8s.networking.v1.NetworkPolicy, "
    "k8s.policy.v1.PodDisruptionBudget, k8s.rbac.v1.ClusterRole, k8s.apiextensions.CustomResource"
)


def rightsize_figures(runs: int = 3) -> str:
    """`rightsize` against two weeks of history on a real server: seconds per whole process and queries sent."""
    from sizing.config.loader import load_stack
    from sizing.observe.rightsize import targets
    from tests.prometheus_server import require_binaries, start_prometheus
    from tests.sizing.usage_history import HISTORY, STEP, series, truths

    config = load_stack("prod", ROOT)
    found = targets(config, build_plan(config, "prod"))
    with (
        tempfile.TemporaryDirectory(prefix="bench-rightsize-") as folder,
        start_prometheus(
            Path(folder), series=series(found, truths(found)), history=HISTORY, step=STEP, binaries=require_binaries()
        ) as server,
    ):
        argv = [sys.executable, "-m", "sizing", "rightsize", "--stack", "prod", "--prometheus", server.url]
        seconds = _process_seconds(argv, runs=runs)
        answer = subprocess.run([*argv, "-o", "json"], cwd=ROOT, check=True, capture_output=True, text=True)
    sent = json.loads(answer.stdout)["queries"]
    containers = sum(len(t.containers) for t in found)
    return (
        f"python -m sizing rightsize --stack prod --prometheus (14 days, {len(found)} entries, {containers} "
        f"containers; whole process, {runs} runs): median {statistics.median(seconds):.3f} s, "
        f"max {max(seconds):.3f} s, {sent} queries   [target ≤ 10 s]"
    )


def suite_figures() -> list[str]:
    """The two test loops' wall time, as `make unit` and `make test` run them."""
    import re

    lines = []
    for label, argv in (
        ("make unit (pure and mock layers)", ["make", "--no-print-directory", "unit"]),
        ("the whole suite (pytest -n 2)", [sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider"]),
    ):
        start = time.perf_counter()
        done = subprocess.run(argv, cwd=ROOT, check=False, capture_output=True, text=True)
        seconds = time.perf_counter() - start
        counts = re.findall(r"(\d+) (passed|failed|skipped)", done.stdout)
        summary = ", ".join(f"{n} {what}" for n, what in counts) or "no summary (see pytest)"
        lines.append(f"{label}: {seconds:.1f} s wall, {summary}, exit {done.returncode}")
    return lines


def main() -> None:
    python = sys.executable
    render = _process_seconds([python, "-m", "offline.render", "--stack", "prod", "--out", "build/bench"], runs=3)
    bare = _process_seconds([python, "-c", "import pulumi_kubernetes.apps.v1, pulumi_gcp.container"], runs=3)
    classes = _process_seconds([python, "-c", _PROVIDER_CLASSES], runs=3)
    cli = _process_seconds([sys.executable, "-m", "sizing", "plan", "--stack", "prod"], runs=10)
    advice = _process_seconds([sys.executable, "-m", "sizing", "recommend", "--stack", "prod"], runs=10)
    config = synthetic_stack()
    pods = sum(w.replicas for w in config.workloads.values())
    planning, searching = [], []
    for _ in range(5):
        start = time.perf_counter()
        plan = build_plan(config, "synthetic")
        planning.append(time.perf_counter() - start)
    for _ in range(3):
        start = time.perf_counter()
        found = recommend(config, "synthetic", demand(config))
        searching.append(time.perf_counter() - start)
    print(
        f"python -m sizing plan --stack prod (whole process, 10 runs): "
        f"median {statistics.median(cli):.3f} s, min {min(cli):.3f} s   [target ≤ 0.5 s]"
    )
    print(
        f"python -m sizing recommend --stack prod (whole process, 10 runs): "
        f"median {statistics.median(advice):.3f} s, min {min(advice):.3f} s   [target ≤ 0.5 s]"
    )
    print(
        f"build_plan, synthetic stack of {len(config.workloads)} workloads / {pods} pods "
        f"({plan.nodes.min}..{plan.nodes.max} nodes), 5 runs: "
        f"median {statistics.median(planning):.3f} s, max {max(planning):.3f} s   [target ≤ 1 s]"
    )
    print(
        f"recommend, the same synthetic stack over {len(found.options)} options "
        f"(best {found.best.min} × {found.best.machine_type}), 3 runs: "
        f"median {statistics.median(searching):.3f} s, max {max(searching):.3f} s   [target ≤ 2 s]"
    )
    r, b, c = statistics.median(render), statistics.median(bare), statistics.median(classes)
    print(f"offline render of prod (whole process, 3 runs): median {r:.3f} s")
    print(
        f"  bare `import pulumi_kubernetes.apps.v1, pulumi_gcp.container`: median {b:.3f} s, "
        f"render/bare {r / b:.1f}×   [target ≤ 2×]"
    )
    print(f"  import of the provider classes the program registers: median {c:.3f} s, render/classes {r / c:.1f}×")
    print(rightsize_figures())
    if "--suites" in sys.argv[1:]:
        for line in suite_figures():
            print(line)


if __name__ == "__main__":
    main()
