"""Monitoring as code: Prometheus recording rules, alerts and Grafana dashboards built from the sizing model.

The builders here are plain data (no pulumi import), so they are rendered and checked by promtool and the
dashboard lint offline; `component.py` ships them as Kubernetes objects.
"""
