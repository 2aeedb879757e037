"""The opt-in allocator setting of `drive-jepa bench scorer`."""

from __future__ import annotations

import ctypes.util
import platform

from training.scoring.malloc import keep_freed_memory


def test_keep_freed_memory_is_accepted_by_glibc() -> None:
    applied = keep_freed_memory()
    assert isinstance(applied, bool)
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc" and ctypes.util.find_library("c"):
        assert applied  # both mallopt calls return 1 on glibc
