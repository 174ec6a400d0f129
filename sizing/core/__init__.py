"""The sizing model's foundation: the base `Model`, errors that name a config key, Kubernetes quantities, the
capacity arithmetic every layer shares, and the plan's one clock. Imports nothing else of `sizing`."""
