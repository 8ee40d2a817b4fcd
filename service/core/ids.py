"""Name-based identifiers: str(uuid.uuid5(namespace, name)) without the uuid.UUID object (several per hook call;
the object's construction and formatting cost more than the hash). tests/core/test_ids.py checks the equality."""
from __future__ import annotations

import hashlib
import uuid


def uuid5(namespace: uuid.UUID, name: str | bytes) -> str:
    """RFC 4122 version 5 of `name` (str: as UTF-8) in `namespace`, in the canonical text form."""
    digest = bytearray(hashlib.sha1(namespace.bytes + (name.encode() if isinstance(name, str) else name)).digest())
    digest[6] = (digest[6] & 0x0F) | 0x50          # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80          # RFC 4122 variant
    h = digest[:16].hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
