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

_MS = (1 << 48) - 1
#: A random hex digit -> the digit holding the variant bits ``10`` and two of its random bits.
_VARIANT = {f"{d:x}": "89ab"[d & 3] for d in range(16)}


def time_ordered_ids(n: int) -> list[str]:
    """``n`` new version-7 UUIDs, as text, in increasing order."""
    # The 48 bits of milliseconds are the batch's: formatted once. Per id, 74 random bits
    # (12 after the version, 62 after the variant), taken from one hex string by slicing.
    ms = f"{time.time_ns() // 1_000_000 & _MS:012x}"
    head = f"{ms[:8]}-{ms[8:]}-7"
    noise = os.urandom(10 * n).hex()
    out = []
    for i in range(0, 20 * n, 20):
        r = noise[i : i + 20]
        # Hex digit 4 of the fourth group carries the variant (0b10) and 2 random bits.
        out.append(f"{head}{r[:3]}-{_VARIANT[r[3]]}{r[4:7]}-{r[7:19]}")
    out.sort()
    return out
