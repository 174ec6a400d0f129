"""The Pulumi program of hyperstudy-infra (grown by the program issue: node pool, workloads, monitoring)."""
