"""What the running platform reports: the metric contract the app exports, a Prometheus client, `status` (capacity
now) and `calibration` (the formula fitted from history). Reads the config and the plan; nothing below reads it."""
