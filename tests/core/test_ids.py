import hashlib
import uuid

import pytest

from service.core.ids import uuid5

NS = uuid.UUID("0f7c1d52-8a4e-4c39-9a51-6d2b7e0c3a14")


@pytest.mark.parametrize("name", ["", "a", "hook-1|advisory-2", "é ü 中文 🙂", "x" * 10_000])
def test_the_same_identifier_as_the_standard_library(name):
    assert uuid5(NS, name) == str(uuid.uuid5(NS, name))
    assert uuid5(NS, name.encode()) == str(uuid.uuid5(NS, name))


def test_every_byte_pattern_gives_the_version_5_uuid_of_its_hash():
    for i in range(256):
        ns, data = uuid.UUID(bytes=bytes([i] * 16)), bytes([i, 255 - i])
        expected = uuid.UUID(bytes=hashlib.sha1(ns.bytes + data).digest()[:16], version=5)
        assert uuid5(ns, data) == str(expected)
        assert uuid.UUID(uuid5(ns, data)).version == 5 and uuid.UUID(uuid5(ns, data)).variant == uuid.RFC_4122
