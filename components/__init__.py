"""Pulumi ComponentResources of hyperstudy-infra. Each takes its sizes from the sizing plan, never its own numbers."""
