"""Row stripes: whole-plane work in pieces of about ``STRIPE_VALUES`` values, sharing threads.

A stripe's temporaries stay small (a few MB, whatever the sensor), stripes share the threads
(numpy releases the GIL in its loops), and each one's data is still in cache from one step to
the next. Stripes never change a number: every operation done per stripe is element-wise or
per block.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

STRIPE_VALUES = 1 << 18


def each_stripe(pool: ThreadPoolExecutor | None, r0: int, r1: int, row_values: int, fn) -> None:
    """``fn(a, b)`` over stripes of rows r0:r1 of ``row_values`` values each, in ``pool``'s threads."""
    step = max(8, STRIPE_VALUES // max(row_values, 1))
    ranges = [(r, min(r + step, r1)) for r in range(r0, r1, step)]
    if pool is None or len(ranges) < 2:
        for a, b in ranges:
            fn(a, b)
    else:
        for _ in pool.map(lambda r: fn(*r), ranges):
            pass
