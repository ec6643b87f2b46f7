"""How much one sensor tick may ask for.

A tick must stay well inside Dagster's 60 s sensor timeout, and a burst of thousands of run
requests (200 tenants onboarded at once, a backlog of dropped files) floods the run queue and
the daemon's tick. Sensors emit at most this many run requests per tick and remember the rest
in their cursor for the next one.
"""

import os

from orchestration.settings import ENV_SENSOR_MAX_RUN_REQUESTS

DEFAULT_MAX_RUN_REQUESTS = 50


def max_run_requests() -> int:
    raw = os.environ.get(ENV_SENSOR_MAX_RUN_REQUESTS)
    try:
        value = int(raw) if raw else DEFAULT_MAX_RUN_REQUESTS
    except ValueError:
        value = DEFAULT_MAX_RUN_REQUESTS
    return max(value, 1)
