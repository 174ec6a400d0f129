"""Monitoring as code: Prometheus recording rules and alerts, Alertmanager's routing and Grafana dashboards, built
from the stack config and the sizing plan.

Plain data: it imports `sizing` and never `components` or pulumi (pyproject.toml's import contracts), so promtool,
a real Prometheus and the dashboard lint check it offline; `components/monitoring.py` ships it as Kubernetes objects.
"""
