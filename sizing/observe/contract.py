"""The metric contract and the PromQL grammar to select it: the series the platform exports (what the rules, the
dashboards and `python -m sizing fit` / `status` read) and the pure helpers that build selectors from a stack's
names, so no metric name or matcher is typed twice. `monitoring.names` re-exports both.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sizing.core.model import ROLES

# --- The metric contract: series the platform must export (see README, "Metric contract"). ---
# Backend (prom-client): connected users per role, active experiments, Node.js default metrics.
CONNECTED_USERS = "hyperstudy_connected_users"  # gauge, label role
ACTIVE_EXPERIMENTS = "hyperstudy_active_experiments"  # gauge
NODEJS_HEAP_USED = "nodejs_heap_size_used_bytes"
NODEJS_HEAP_SPACE_USED = "nodejs_heap_space_size_used_bytes"  # label space: V8's heap spaces
NODEJS_HEAP_TOTAL = "nodejs_heap_size_total_bytes"
PROCESS_RSS = "process_resident_memory_bytes"
# Cluster: cAdvisor and kube-state-metrics.
WORKING_SET = "container_memory_working_set_bytes"
CPU_USAGE = "container_cpu_usage_seconds_total"  # counter: CPU seconds the container used
REQUESTS = "kube_pod_container_resource_requests"  # resource="memory" or "cpu"
LIMITS = "kube_pod_container_resource_limits"  # resource="memory"
RESTARTS = "kube_pod_container_status_restarts_total"
LAST_TERMINATED = "kube_pod_container_status_last_terminated_reason"
NODE_ALLOCATABLE = "kube_node_status_allocatable"
NODE_INFO = "kube_node_info"  # label kubelet_version: a pool running two versions is being upgraded
NODE_UNSCHEDULABLE = "kube_node_spec_unschedulable"  # label node: 1 while cordoned (a drain, an upgrade's surge)
NODE_LABELS = "kube_node_labels"  # label_<node label>, for the labels kube-state-metrics is allowed to export
POD_PHASE = "kube_pod_status_phase"  # label phase, 1 for the pod's current phase
POD_INFO = "kube_pod_info"  # label node: where the pod is scheduled
# Every app workload's desired replicas against its ready (StatefulSet) or available (Deployment) ones: a workload
# with none is down (HyperStudyWorkloadUnavailable).
STATEFULSET_REPLICAS = "kube_statefulset_replicas"  # labels namespace, statefulset: spec.replicas
STATEFULSET_READY = "kube_statefulset_status_replicas_ready"  # labels namespace, statefulset
DEPLOYMENT_REPLICAS = "kube_deployment_spec_replicas"  # labels namespace, deployment
DEPLOYMENT_AVAILABLE = "kube_deployment_status_replicas_available"  # labels namespace, deployment
# What the scheduled scaling (`capacity.schedule`) is watched by, read only for a stack with a schedule: the
# formula-sized StatefulSet's desired replicas (what the scaler Jobs set) against its ready ones, the outcome of
# the scaler Jobs (`<workload>-<window>-<up|down>-<minutes>`, made by their CronJobs), and the CronJobs themselves
# (`<workload>-<window>-<up|down>`: there, suspended, run when due, and how their latest run ended).
JOB_FAILED = "kube_job_failed"  # labels namespace, job_name, condition: condition="true" 1 once the Job failed
JOB_PODS_FAILED = "kube_job_status_failed"  # labels namespace, job_name (and reason once the Job failed)
JOB_PODS_SUCCEEDED = "kube_job_status_succeeded"  # labels namespace, job_name
JOB_START_TIME = "kube_job_status_start_time"  # labels namespace, job_name: when the Job started (Unix time)
# labels namespace, cronjob: the schedule's first firing after the last run the controller started, in the CronJob's
# spec.timeZone from kube-state-metrics 2.15 on; absent while the CronJob is suspended.
CRONJOB_NEXT_SCHEDULE_TIME = "kube_cronjob_next_schedule_time"
CRONJOB_SUSPENDED = "kube_cronjob_spec_suspend"  # labels namespace, cronjob: 1 while suspended; one per CronJob
# labels namespace, cronjob: the scheduled time of the latest run the controller started, and the completion time of
# the latest Job of the CronJob that succeeded (absent until one has); Unix times.
CRONJOB_LAST_SCHEDULE_TIME = "kube_cronjob_status_last_schedule_time"
CRONJOB_LAST_SUCCESS_TIME = "kube_cronjob_status_last_successful_time"

CONTRACT: dict[str, str] = {
    CONNECTED_USERS: "backend: connected users per role (label role)",
    ACTIVE_EXPERIMENTS: "backend: experiments running",
    NODEJS_HEAP_USED: "backend (prom-client): V8 heap in use",
    NODEJS_HEAP_SPACE_USED: "Node.js services (prom-client): V8 heap in use per space (label space)",
    NODEJS_HEAP_TOTAL: "backend (prom-client): V8 heap allocated",
    PROCESS_RSS: "backend (prom-client): resident memory",
    WORKING_SET: "cAdvisor: container working set",
    CPU_USAGE: "cAdvisor: container CPU time (a counter)",
    REQUESTS: "kube-state-metrics: container requests (resource=memory, resource=cpu)",
    LIMITS: "kube-state-metrics: container limits (resource=memory)",
    RESTARTS: "kube-state-metrics: container restarts",
    LAST_TERMINATED: "kube-state-metrics: reason of the last termination (reason=OOMKilled)",
    NODE_ALLOCATABLE: "kube-state-metrics: node allocatable (resource=memory)",
    NODE_INFO: "kube-state-metrics: one series per node (label kubelet_version)",
    NODE_UNSCHEDULABLE: "kube-state-metrics: a node is cordoned (1)",
    NODE_LABELS: "kube-state-metrics: allowlisted node labels (label_cloud_google_com_gke_nodepool: the node pool)",
    POD_PHASE: "kube-state-metrics: the pod's phase (label phase, value 1 for the current one)",
    POD_INFO: "kube-state-metrics: the node a pod is scheduled on (label node)",
    STATEFULSET_REPLICAS: "kube-state-metrics: a StatefulSet's desired replicas (spec.replicas)",
    STATEFULSET_READY: "kube-state-metrics: a StatefulSet's ready replicas",
    DEPLOYMENT_REPLICAS: "kube-state-metrics: a Deployment's desired replicas (spec.replicas)",
    DEPLOYMENT_AVAILABLE: "kube-state-metrics: a Deployment's available replicas",
    JOB_FAILED: 'kube-state-metrics: a Job gave up (condition="true")',
    JOB_PODS_FAILED: "kube-state-metrics: a Job's failed pods",
    JOB_PODS_SUCCEEDED: "kube-state-metrics: a Job's succeeded pods",
    JOB_START_TIME: "kube-state-metrics: when a Job started",
    CRONJOB_NEXT_SCHEDULE_TIME: "kube-state-metrics: when a CronJob is next due (in the past once a run was missed)",
    CRONJOB_SUSPENDED: "kube-state-metrics: a CronJob is suspended (1), one series per CronJob",
    CRONJOB_LAST_SCHEDULE_TIME: "kube-state-metrics: the scheduled time of a CronJob's latest run",
    CRONJOB_LAST_SUCCESS_TIME: "kube-state-metrics: when a Job of a CronJob last succeeded (absent before any has)",
}


@dataclass(frozen=True)
class AppSeries:
    """A series of the app's side of the contract: what its `/metrics` must expose for the rules, the dashboards,
    `fit` and `status` (checked by `python -m sizing contract`)."""

    name: str
    type: str
    labels: tuple[str, ...] = ()
    # label → the only values the rules read (a label not named here: any value); any other is counted nowhere.
    values: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # Declared with no sample yet is fine: a labelled gauge has none until a value is set.
    may_be_empty: bool = False

    @property
    def about(self) -> str:
        return CONTRACT[self.name]


# The backend's series (prom-client: its own gauges and the Node.js default metrics), every one a gauge. A role
# without a series counts 0 (a pod with no experimenter need not export `role="experimenter"`).
APP_CONTRACT: tuple[AppSeries, ...] = (
    AppSeries(CONNECTED_USERS, "gauge", ("role",), {"role": ROLES}, may_be_empty=True),
    AppSeries(ACTIVE_EXPERIMENTS, "gauge"),
    AppSeries(NODEJS_HEAP_USED, "gauge"),
    AppSeries(NODEJS_HEAP_SPACE_USED, "gauge", ("space",)),
    AppSeries(NODEJS_HEAP_TOTAL, "gauge"),
    AppSeries(PROCESS_RSS, "gauge"),
)

# The label the workload helpers add, derived from `pod`.
WORKLOAD_LABEL = "workload"
