"""Record ids the adapter makes: UUIDs whose first bits are the time (RFC 9562, version 7).

A random (version 4) id sends every insert to a random page of each index holding it: the
record's own ``id`` index, the match keys' ``crm_id`` index. A batch of 100 records then dirties
some hundreds of pages, each written to the database (SQLite: to its WAL at ``COMMIT``, which
measured as much as the inserts themselves). Ids that grow with time land on the last pages
instead. They are still UUIDs (36 characters, as before), unique through their 74 random bits,
and no more meaningful to a client than before (they only reveal the creation time to the
millisecond, which the record's ``created_at`` holds anyway).
"""

from __future__ import annotations

import os
import time

__all__ = ["time_ordered_ids"]

_RAND_A = (1 << 12) - 1
_RAND_B = (1 << 62) - 1


def time_ordered_ids(n: int) -> list[str]:
    """``n`` new version-7 UUIDs, as text, in increasing order."""
    ms = time.time_ns() // 1_000_000
    noise = os.urandom(10 * n)
    out = []
    for i in range(n):
        r = int.from_bytes(noise[10 * i : 10 * i + 10], "big")
        # 48 bits of milliseconds, version 7, 12 random bits, variant 0b10, 62 random bits.
        value = (ms << 80) | (0x7 << 76) | ((r >> 62) & _RAND_A) << 64 | (0b10 << 62)
        h = f"{value | (r & _RAND_B):032x}"
        out.append(f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}")
    out.sort()
    return out
