"""The plan: every size, the node pool, its placement, the bill, the schedule and the maintenance policy derived
from a `StackConfig`. `types` holds the result models (a leaf); `placement` the scheduler's rules (a leaf);
`sizes`, `nodes`, `pools`, `bill`, `schedule`, `maintenance` the planners; `build` the one orchestrator."""
