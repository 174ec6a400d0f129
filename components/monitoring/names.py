"""Every metric name the monitoring reads or records, defined once: the metric contract and the rule names; and
the scrape interval the rules are evaluated at.

Rules, alerts, dashboards, tests and the README table all import these; a dashboard query reading a name that
is neither recorded here nor in the contract fails the lint.
"""

from __future__ import annotations

# The metric contract lives in sizing/metrics.py (`python -m sizing fit` and `status` read it too): re-exported.
from sizing.metrics import (
    ACTIVE_EXPERIMENTS as ACTIVE_EXPERIMENTS,
    CONNECTED_USERS as CONNECTED_USERS,
    CONTRACT as _PLATFORM_CONTRACT,
    LAST_TERMINATED as LAST_TERMINATED,
    LIMITS as LIMITS,
    NODE_ALLOCATABLE as NODE_ALLOCATABLE,
    NODE_INFO as NODE_INFO,
    NODE_LABELS as NODE_LABELS,
    NODEJS_HEAP_SPACE_USED as NODEJS_HEAP_SPACE_USED,
    NODEJS_HEAP_TOTAL as NODEJS_HEAP_TOTAL,
    NODEJS_HEAP_USED as NODEJS_HEAP_USED,
    POD_INFO as POD_INFO,
    POD_PHASE as POD_PHASE,
    PROCESS_RSS as PROCESS_RSS,
    REQUESTS as REQUESTS,
    RESTARTS as RESTARTS,
    WORKING_SET as WORKING_SET,
)

# kube-state-metrics series the scheduled scaling (`capacity.schedule`) is watched by; read only for a stack with a
# schedule. The formula-sized StatefulSet's desired replicas (what the scaler Jobs set) against its ready ones, and
# the outcome of the scaler Jobs (`<workload>-<window>-<up|down>-<minutes>`, from their CronJobs).
STATEFULSET_REPLICAS = "kube_statefulset_replicas"  # labels namespace, statefulset: spec.replicas
STATEFULSET_READY = "kube_statefulset_status_replicas_ready"  # labels namespace, statefulset
JOB_FAILED = "kube_job_failed"  # labels namespace, job_name, condition: condition="true" 1 once the Job failed
JOB_PODS_FAILED = "kube_job_status_failed"  # labels namespace, job_name (and reason once the Job failed)
JOB_PODS_SUCCEEDED = "kube_job_status_succeeded"  # labels namespace, job_name
# The metric contract (sizing/metrics.py, what the sizing CLI reads too) and the schedule's series above.
CONTRACT: dict[str, str] = {
    **_PLATFORM_CONTRACT,
    STATEFULSET_REPLICAS: "kube-state-metrics: a StatefulSet's desired replicas (spec.replicas)",
    STATEFULSET_READY: "kube-state-metrics: a StatefulSet's ready replicas",
    JOB_FAILED: 'kube-state-metrics: a Job gave up (condition="true")',
    JOB_PODS_FAILED: "kube-state-metrics: a Job's failed pods",
    JOB_PODS_SUCCEEDED: "kube-state-metrics: a Job's succeeded pods",
}

# How often Prometheus scrapes the workloads (their PodMonitor/PodMonitoring `interval`). The recording and alerting
# groups evaluate at the same interval, so each evaluation sees one new sample per series: defined once here, read
# by the rules and by the scrape configs of `components/workload.py`.
SCRAPE_INTERVAL = "30s"

# The node pool label as kube-state-metrics exports it: `label_` and the label key with every character outside
# [a-zA-Z0-9_] replaced by `_` (cloud.google.com/gke-nodepool), once allowlisted (metricLabelsAllowlist).
NODE_POOL_LABEL = "label_cloud_google_com_gke_nodepool"

# --- Recording rules (level:metric:operations). ---
PREDICTED = "pod:hyperstudy_memory_predicted_bytes:formula"
SLOTS = "namespace:hyperstudy_experiment_slots:available"
CONTAINER_LIMIT_UTILISATION = "namespace_pod_container:hyperstudy_memory_limit_utilisation:ratio"
PREDICTION_ACCURACY = "pod:hyperstudy_memory_prediction_accuracy:ratio"
MEMORY_BY_ROLE = "namespace_role:hyperstudy_memory_attributed_bytes:sum"
WORKLOAD_WORKING_SET = "namespace_workload:container_memory_working_set_bytes:sum"
WORKLOAD_REQUESTS = "namespace_workload:kube_pod_container_resource_requests_memory_bytes:sum"
WORKLOAD_LIMITS = "namespace_workload:kube_pod_container_resource_limits_memory_bytes:sum"
REQUEST_UTILISATION = "namespace_workload:hyperstudy_memory_request_utilisation:ratio"
LIMIT_UTILISATION = "namespace_workload:hyperstudy_memory_limit_utilisation:ratio"
EFFICIENCY = "namespace:hyperstudy_memory_efficiency:ratio"
# Cluster-level records: they aggregate over the nodes of the stack's pool (a shared cluster's other pools are not
# counted), and each also carries the stack's `namespace` label, so two stacks sharing one Prometheus record
# distinct series.
NODES = "cluster:hyperstudy_nodes:count"
COST = "cluster:hyperstudy_cost_usd_month:sum"
POOL_ALLOCATABLE = "cluster:hyperstudy_pool_allocatable_memory_bytes:sum"
BACKEND_HELD = "namespace:hyperstudy_backend_memory_held_bytes:sum"
OTHER_POOL_REQUESTS = "namespace:hyperstudy_other_pool_memory_requests_bytes:sum"
POOL_MEMORY_BY_PART = "namespace_role:hyperstudy_pool_memory_bytes:attributed"
COST_BY_ROLE = "role:hyperstudy_cost_usd_month:attributed"
SAVINGS = "cluster:hyperstudy_savings_usd_month:baseline"
SAVINGS_RATIO = "cluster:hyperstudy_savings:ratio"
BILL = "cluster:hyperstudy_bill_usd_month:sum"
OBSERVED_SAVINGS = "cluster:hyperstudy_savings_usd_month:observed"
OBSERVED_SAVINGS_RATIO = "cluster:hyperstudy_savings:observed_ratio"
COST_MAX_1D = "cluster:hyperstudy_cost_usd_month:max_over_time1d"
COST_AVG_1D = "cluster:hyperstudy_cost_usd_month:avg_over_time1d"
WORKING_SET_MAX_1D = "namespace_workload:container_memory_working_set_bytes:max_over_time1d"
WORKING_SET_AVG_1D = "namespace_workload:container_memory_working_set_bytes:avg_over_time1d"

# --- Alerts (names fixed by the issue). ---
ALERT_MEMORY_NEAR_LIMIT = "HyperStudyMemoryNearLimit"
ALERT_OOM_KILLED = "HyperStudyContainerOOMKilled"
ALERT_PREDICTION_DRIFT = "HyperStudyMemoryPredictionDrift"
ALERT_CAPACITY_LOW = "HyperStudyCapacityLow"
ALERT_MEMORY_OVERCOMMIT = "HyperStudyMemoryOvercommit"
ALERT_NODE_POOL_AT_MAX = "HyperStudyNodePoolAtMax"
ALERT_HEAP_NEAR_LIMIT = "HyperStudyHeapNearLimit"
# Only for a stack with capacity.schedule.
ALERT_SCHEDULED_CAPACITY_NOT_READY = "HyperStudyScheduledCapacityNotReady"
ALERT_SCHEDULED_SCALING_FAILED = "HyperStudyScheduledScalingFailed"

# --- Where Grafana's dashboard sidecar looks (kube-prometheus-stack's defaults, set explicitly when installed). ---
DASHBOARD_LABEL = "grafana_dashboard"  # value "1": a ConfigMap holding dashboards
FOLDER_ANNOTATION = "grafana_folder"  # the Grafana folder the dashboards of the ConfigMap go to
