"""What the model takes as given rather than configured: the app's workloads (ports, probes, storage) and public
routes, the Helm charts' pod inventories, and GKE's machine types and prices. Imports only `sizing.core`."""
