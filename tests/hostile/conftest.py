"""Hypothesis profiles for the hostile-input tests (issue #14).

`hostile` (the default, and CI's) is derandomized: the same examples on every run and
every machine, so a failure reproduces and a green run means the same thing twice, and
nothing is written to a `.hypothesis` database in the tree. `hostile-explore` draws fresh
random examples, more of them, for a local hunt: HYPOTHESIS_PROFILE=hostile-explore.

Deadlines are off: the machine is shared, and time is not what these tests measure (see
tests/hostile/README.md for how super-linear work is kept out instead).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile(
    "hostile",
    max_examples=200,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "hostile-explore", settings.get_profile("hostile"), max_examples=2000, derandomize=False
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "hostile"))
