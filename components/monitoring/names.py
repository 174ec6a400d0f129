"""Every metric name the monitoring reads or records, defined once: the metric contract and the rule names; and
the scrape interval the rules are evaluated at.

Rules, alerts, dashboards, tests and the README table all import these; a dashboard query reading a name that
is neither recorded here nor in the contract fails the lint.
"""

from __future__ import annotations

# How often Prometheus scrapes the workloads (their PodMonitor/PodMonitoring `interval`). The recording and alerting
# groups evaluate at the same interval, so each evaluation sees one new sample per series: defined once here, read
# by the rules and by the scrape configs of `components/workload.py`.
SCRAPE_INTERVAL = "30s"

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
REQUESTS = "kube_pod_container_resource_requests"  # resource="memory"
LIMITS = "kube_pod_container_resource_limits"  # resource="memory"
RESTARTS = "kube_pod_container_status_restarts_total"
LAST_TERMINATED = "kube_pod_container_status_last_terminated_reason"
NODE_ALLOCATABLE = "kube_node_status_allocatable"
NODE_INFO = "kube_node_info"
NODE_LABELS = "kube_node_labels"  # label_<node label>, for the labels kube-state-metrics is allowed to export
POD_PHASE = "kube_pod_status_phase"  # label phase, 1 for the pod's current phase
POD_INFO = "kube_pod_info"  # label node: where the pod is scheduled

CONTRACT: dict[str, str] = {
    CONNECTED_USERS: "backend: connected users per role (label role)",
    ACTIVE_EXPERIMENTS: "backend: experiments running",
    NODEJS_HEAP_USED: "backend (prom-client): V8 heap in use",
    NODEJS_HEAP_SPACE_USED: "Node.js services (prom-client): V8 heap in use per space (label space)",
    NODEJS_HEAP_TOTAL: "backend (prom-client): V8 heap allocated",
    PROCESS_RSS: "backend (prom-client): resident memory",
    WORKING_SET: "cAdvisor: container working set",
    REQUESTS: "kube-state-metrics: container requests (resource=memory)",
    LIMITS: "kube-state-metrics: container limits (resource=memory)",
    RESTARTS: "kube-state-metrics: container restarts",
    LAST_TERMINATED: "kube-state-metrics: reason of the last termination (reason=OOMKilled)",
    NODE_ALLOCATABLE: "kube-state-metrics: node allocatable (resource=memory)",
    NODE_INFO: "kube-state-metrics: one series per node",
    NODE_LABELS: "kube-state-metrics: allowlisted node labels (label_cloud_google_com_gke_nodepool: the node pool)",
    POD_PHASE: "kube-state-metrics: the pod's phase (label phase, value 1 for the current one)",
    POD_INFO: "kube-state-metrics: the node a pod is scheduled on (label node)",
}

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

# --- Where Grafana's dashboard sidecar looks (kube-prometheus-stack's defaults, set explicitly when installed). ---
DASHBOARD_LABEL = "grafana_dashboard"  # value "1": a ConfigMap holding dashboards
FOLDER_ANNOTATION = "grafana_folder"  # the Grafana folder the dashboards of the ConfigMap go to
