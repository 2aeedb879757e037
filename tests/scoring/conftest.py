"""Scorer tests run single-threaded: their batches are small (168 rows per parity scene), where intra-op
threads only add synchronisation, and the dev machine is shared (2 cores)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
