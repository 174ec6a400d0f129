"""The one reading of the current time the plan makes (a schedule's next starts and one-off jobs, the maintenance
exclusions): now, or the instant `SOURCE_DATE_EPOCH` gives, the reproducible-builds convention, so that a render and
its JSON outputs can be made again byte for byte (the golden renders of tests/golden/ are made at a fixed one).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from sizing.core.errors import ConfigError

EPOCH_VARIABLE = "SOURCE_DATE_EPOCH"


def now() -> datetime:
    """The current instant in UTC, or `SOURCE_DATE_EPOCH` (whole seconds since 1970) when it is set."""
    epoch = os.environ.get(EPOCH_VARIABLE)
    if epoch is None or epoch == "":
        return datetime.now(UTC)
    try:
        return datetime.fromtimestamp(int(epoch), UTC)
    except (ValueError, OverflowError, OSError):
        raise ConfigError(EPOCH_VARIABLE, f"{epoch!r} is not a whole number of seconds since 1970") from None
