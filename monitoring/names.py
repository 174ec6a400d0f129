"""Every metric name the monitoring reads or records, defined once: the metric contract and the rule names; and
the scrape interval the rules are evaluated at.

Rules, alerts, dashboards, tests and the README table all import these; a dashboard query reading a name that
is neither recorded here nor in the contract fails the lint.
"""

from __future__ import annotations

# The metric contract (the series the platform must export) lives in sizing/observe/contract.py, which
# `python -m sizing fit` and `status` read too; the names here are the ones the rules record.

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
# Requested vs used per container: every container the plan sizes (the app's, the charts' pods and their sidecars),
# labelled with the stack's `namespace`, the pod's own namespace (`pod_namespace`) and `container`; each the maximum
# over the container's pods (they share one size). Recorded at the scrape interval from 5 m windows...
CONTAINER_CPU_USAGE = "namespace_container:container_cpu_usage_seconds:max_rate5m"
CONTAINER_MEMORY_USAGE = "namespace_container:container_memory_working_set_bytes:max"
CONTAINER_CPU_REQUEST = "namespace_container:kube_pod_container_resource_requests_cpu_cores:max"
CONTAINER_MEMORY_REQUEST = "namespace_container:kube_pod_container_resource_requests_memory_bytes:max"
CONTAINER_MEMORY_LIMIT = "namespace_container:kube_pod_container_resource_limits_memory_bytes:max"
# ... and over the last day from those (the daily group).
CONTAINER_CPU_P95_1D = "namespace_container:container_cpu_usage_seconds:quantile95_over_time1d"
CONTAINER_CPU_MAX_1D = "namespace_container:container_cpu_usage_seconds:max_over_time1d"
CONTAINER_MEMORY_P95_1D = "namespace_container:container_memory_working_set_bytes:quantile95_over_time1d"
CONTAINER_MEMORY_MAX_1D = "namespace_container:container_memory_working_set_bytes:max_over_time1d"
CONTAINER_CPU_P95_REQUEST_1D = "namespace_container:hyperstudy_cpu_request_utilisation:quantile95_over_time1d"
CONTAINER_MEMORY_MAX_REQUEST_1D = "namespace_container:hyperstudy_memory_request_utilisation:max_over_time1d"
CONTAINER_MEMORY_MAX_LIMIT_1D = "namespace_container:hyperstudy_memory_limit_utilisation:max_over_time1d"
# The share of the last day a container ran above HyperStudyContainerRequestDrift's threshold × its request.
CONTAINER_CPU_ABOVE_REQUEST_1D = "namespace_container:hyperstudy_cpu_above_request:ratio1d"
CONTAINER_MEMORY_ABOVE_REQUEST_1D = "namespace_container:hyperstudy_memory_above_request:ratio1d"

# --- Alerts (names fixed by the issue). ---
ALERT_MEMORY_NEAR_LIMIT = "HyperStudyMemoryNearLimit"
ALERT_OOM_KILLED = "HyperStudyContainerOOMKilled"
ALERT_PREDICTION_DRIFT = "HyperStudyMemoryPredictionDrift"
ALERT_CAPACITY_LOW = "HyperStudyCapacityLow"
ALERT_MEMORY_OVERCOMMIT = "HyperStudyMemoryOvercommit"
ALERT_NODE_POOL_AT_MAX = "HyperStudyNodePoolAtMax"
ALERT_HEAP_NEAR_LIMIT = "HyperStudyHeapNearLimit"
ALERT_WORKLOAD_UNAVAILABLE = "HyperStudyWorkloadUnavailable"
ALERT_REQUEST_DRIFT = "HyperStudyContainerRequestDrift"
# Only for a stack with capacity.schedule.
ALERT_SCHEDULED_CAPACITY_NOT_READY = "HyperStudyScheduledCapacityNotReady"
ALERT_SCHEDULED_SCALING_FAILED = "HyperStudyScheduledScalingFailed"

# The heartbeat: an alert that always fires, so that its notifications stopping means the alerting pipeline stopped.
# kube-prometheus-stack's name for it; the rules ship their own only where the evaluator has none (Managed
# Prometheus), so one Alertmanager route serves both.
WATCHDOG = "Watchdog"

# --- Where Grafana's dashboard sidecar looks (kube-prometheus-stack's defaults, set explicitly when installed). ---
DASHBOARD_LABEL = "grafana_dashboard"  # value "1": a ConfigMap holding dashboards
FOLDER_ANNOTATION = "grafana_folder"  # the Grafana folder the dashboards of the ConfigMap go to
