"""How the scaler CronJobs' runs are timed: read by the CronJobs themselves (components/schedule.py) and by the alert
that judges their runs (monitoring/rules.py), which imports no pulumi. Plain constants.
"""

from __future__ import annotations

# The controller starts a run up to 5 minutes late (a controller restart, a busy API server) and skips it after:
# inside the default 10 minutes' lead of a scale-up. A run may take 5 minutes, enough for curl's own retries (6 tries
# of at most 30 s, 31 s of back-off) and a pod retry or two.
STARTING_DEADLINE_SECONDS = 300
ACTIVE_DEADLINE_SECONDS = 300
BACKOFF_LIMIT = 4
# The latest a run can still succeed, counted from its scheduled time: started at the end of its starting deadline,
# it has its whole active deadline. A run with no success recorded by then has failed.
RUN_DEADLINE_SECONDS = STARTING_DEADLINE_SECONDS + ACTIVE_DEADLINE_SECONDS
# Finished Jobs (and their pods' logs) stay a week, so a failed weekly run is still there to read before the next
# one; the history limits already bound how many are kept.
TTL_SECONDS_AFTER_FINISHED = 7 * 24 * 3600
SUCCESSFUL_JOBS_HISTORY_LIMIT = 1
FAILED_JOBS_HISTORY_LIMIT = 3
