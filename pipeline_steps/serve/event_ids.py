"""Event ids (version-4 UUID text) for every request, cheaply.

`uuid.uuid4()` reads 16 bytes from the kernel (a system call) and builds a UUID object for
each request; here the process's own generator, seeded from the kernel's randomness at import
and again in every forked child (workers never share a sequence), gives the 122 random bits.
Ids need to be unique (capture records and late labels are keyed by them), not secret: they
are returned to the caller anyway.
"""

from __future__ import annotations

import os
import random

_VERSION_MASK = ~(0xF000 << 64) & ~(0xC000 << 48)
_VERSION_BITS = (0x4000 << 64) | (0x8000 << 48)  # version 4, RFC 4122 variant
_generator = random.Random(os.urandom(32))


def _reseed() -> None:
    _generator.seed(os.urandom(32))


os.register_at_fork(after_in_child=_reseed)


def event_id() -> str:
    """A new random version-4 UUID, as text."""
    h = "%032x" % ((_generator.getrandbits(128) & _VERSION_MASK) | _VERSION_BITS)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
