"""Tolerance check of the V-JEPA 2 oracle (../shared/fixtures/vjepa2), shared by the encoder and predictor parity
tests (their fixtures `vjepa_fx`, `vjepa_io` are in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import torch

REL_TOL = 2e-5  # the fixture README's acceptance rule: max|actual - expected| <= 2e-5 * max|expected|


def assert_close(actual: torch.Tensor | np.ndarray, expected: np.ndarray, name: str) -> None:
    a = actual.detach().cpu().numpy() if isinstance(actual, torch.Tensor) else actual
    assert a.shape == expected.shape, f"{name}: shape {a.shape} vs {expected.shape}"
    err = float(np.abs(a - expected).max())
    bound = REL_TOL * float(np.abs(expected).max())
    assert err <= bound, f"{name}: max abs diff {err:.3g} > {bound:.3g}"
