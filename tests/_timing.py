# Time bounds in tests. They are there to catch a blow-up (work that grows faster than its
# input, or never ends), not a slow machine, so they read CPU time (other processes on a
# loaded CI runner do not count) and take the best of a few tries: a cold JIT trace or a
# collector pause makes one try slow, a blow-up makes every try slow. Speed targets live
# in bench/, not here.
from __future__ import annotations

import time
from typing import Callable, TypeVar

T = TypeVar("T")


def assert_cpu_under(seconds: float, work: Callable[..., T], *args: object) -> T:
    """Fail unless one of three runs of `work(*args)` takes less than `seconds` of CPU
    time; stops at the first run that does, and returns what it returned."""
    tries = []
    for _ in range(3):
        start = time.process_time()
        result = work(*args)
        tries.append(time.process_time() - start)
        if tries[-1] < seconds:
            return result
    raise AssertionError(f"{work.__qualname__} took {', '.join(f'{t:.3f}' for t in tries)} s "
                         f"of CPU, bound {seconds} s")
