"""The entry point `pulumi preview --policy-pack policy` runs: the one place the hyperstudy-safety pack is built.

Constructing `PolicyPack` starts the analyzer's gRPC server and blocks until the engine is done, which is why no
other module (and no test) constructs one. The engine names the previewed stack in `PULUMI_STACK`; its sizing plan
gives the node pool's lower bound.
"""

import os
import sys
from pathlib import Path

# The engine runs this file with only policy/ on sys.path; the pack imports `policy.*` and `sizing` from the repo.
ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pulumi_policy import EnforcementLevel, PolicyPack  # noqa: E402

from policy.policies import policies  # noqa: E402
from policy.stack_plan import node_lower_bound, stack_from_environment  # noqa: E402

PolicyPack(
    "hyperstudy-safety",
    policies=policies(node_lower_bound(stack_from_environment(os.environ), ROOT)),
    enforcement_level=EnforcementLevel.MANDATORY,
)
