"""`drive-jepa vocab`: build a trajectory vocabulary by k-means, or load/inspect the published one.

A vocabulary is a float32 array (K, 40, 3) of ego rear-axle poses (x forward, y left, heading CCW; metres,
radians) at t = 0.1 ... 4.0 s, like the published 8192-row NAVSIM vocabulary, which ships with the package
(`training/scoring/data/navsim_8192.npy`, name `navsim_8192` wherever a vocabulary is asked for).

k-means (Lloyd) in torch, vectorized: distances are computed in chunks with one matmul per chunk; features are
the flattened poses with the heading scaled by `heading_weight` (metres per radian). Initialisation: batched
k-means++ (seeded, 64 rounds); empty clusters are re-seeded with the points farthest from their
centre. Deterministic for a given seed, data and device.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from drive_jepa.atomic import atomic_file

if TYPE_CHECKING:
    import torch

PUBLISHED_SHA256 = "cc44a31e75a53406db59f026f0358de97931e726f10254542f98d2a87a38ad35"
# vocabularies that ship with the package, by name (provenance: training/scoring/data/README.md)
SHIPPED = {"navsim_8192": Path(__file__).resolve().parent / "data" / "navsim_8192.npy"}
DEFAULT_VOCABULARY = "navsim_8192"


def vocabulary_file(name_or_path: str | Path) -> Path:
    """A shipped vocabulary's name (`navsim_8192`) → its file; anything else is a path, returned as given."""
    return SHIPPED.get(str(name_or_path), Path(name_or_path))


def read_pose_array(path: Path, what: str) -> np.ndarray:
    """A finite (N, T, 3) pose array from a .npy file, or a one-line ValueError naming the file and the problem."""
    if not Path(path).is_file():
        raise ValueError(f"{path}: {what} file not found (a (N, T, 3) .npy of x, y, heading poses)")
    with open(path, "rb") as f:
        magic = f.read(6)
    if magic != b"\x93NUMPY" and not magic.startswith(b"PK"):
        raise ValueError(f"{path}: not a .npy file (no NumPy header); expected a (N, T, 3) {what} array")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npy array ({str(exc).splitlines()[0][:120]})") from None
    if not isinstance(arr, np.ndarray):
        raise ValueError(f"{path}: a .npz archive ({', '.join(arr.files)}); expected one (N, T, 3) .npy array")
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0:
        raise ValueError(f"{path}: expected a (N, T, 3) {what} of x, y, heading poses, got shape {arr.shape}")
    bad = np.flatnonzero(~np.isfinite(arr).all(axis=(1, 2)))
    if bad.size:
        more = " …" if bad.size > 5 else ""
        raise ValueError(f"{path}: rows {bad[:5].tolist()}{more} hold NaN/inf; expected finite poses")
    return arr


def load_vocabulary(path: str | Path, verify: bool = False) -> np.ndarray:
    """Load a (K, 40, 3) vocabulary .npy (or a shipped one by name); with `verify`, check the published file's
    SHA-256."""
    path = vocabulary_file(path)
    arr = read_pose_array(path, "vocabulary")
    if verify:
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != PUBLISHED_SHA256:
            raise ValueError(f"{path}: SHA-256 {digest} is not the published vocabulary's {PUBLISHED_SHA256}")
    return arr


def _sqdist(x: torch.Tensor, c: torch.Tensor, c_norm: torch.Tensor) -> torch.Tensor:
    return (x * x).sum(1, keepdim=True) - 2 * x @ c.T + c_norm[None]


def _kmeanspp_init(data: torch.Tensor, k: int, seed: int, chunk: int, rounds: int = 64) -> torch.Tensor:
    """Batched k-means++: `rounds` rounds, each drawing ceil(k / rounds) new centres with probability
    proportional to the squared distance to the centres so far (exact k-means++ when k <= rounds)."""
    import torch

    g = torch.Generator(device="cpu").manual_seed(seed)
    n = data.shape[0]
    per = max(1, -(-k // rounds))
    first = int(torch.randint(n, (1,), generator=g))
    chosen = [first]
    d2 = ((data - data[first]) ** 2).sum(1)
    while len(chosen) < k:
        m = min(per, k - len(chosen))
        w = d2.clamp_min(0).cpu()
        if float(w.sum()) <= 0:
            w = torch.ones_like(w)
        new = torch.multinomial(w, m, replacement=False, generator=g).tolist()
        chosen += new
        c = data[new]
        cn = (c * c).sum(1)
        for i in range(0, n, chunk):
            d2[i : i + chunk] = torch.minimum(d2[i : i + chunk], _sqdist(data[i : i + chunk], c, cn).amin(1))
    return data[torch.tensor(chosen[:k], device=data.device)].clone()


def kmeans(
    data: torch.Tensor, k: int, iters: int = 50, seed: int = 0, chunk: int = 16384, tol: float = 1e-6
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd k-means on (N, D) -> centres (k, D) and assignments (N,)."""
    import torch

    n = data.shape[0]
    if n < k:
        raise ValueError(f"k-means needs at least k={k} training rows, got {n}")
    centres = _kmeanspp_init(data, k, seed, chunk)
    assign = torch.zeros(n, dtype=torch.int64, device=data.device)
    best = torch.zeros(n, dtype=data.dtype, device=data.device)
    prev_inertia = float("inf")
    for _ in range(iters):
        c_norm = (centres * centres).sum(1)
        for i in range(0, n, chunk):
            d = _sqdist(data[i : i + chunk], centres, c_norm)
            best[i : i + chunk], assign[i : i + chunk] = d.min(1)
        sums = torch.zeros_like(centres).index_add_(0, assign, data)
        counts = torch.bincount(assign, minlength=k).to(data.dtype)
        empty = torch.nonzero(counts == 0).squeeze(1)
        centres = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centres)
        if len(empty):
            far = torch.argsort(best, descending=True, stable=True)[: len(empty)]
            centres[empty] = data[far]
        inertia = float(best.clamp_min(0).sum())
        if len(empty) == 0 and prev_inertia - inertia <= tol * max(prev_inertia, 1e-12):
            break
        prev_inertia = inertia
    c_norm = (centres * centres).sum(1)
    for i in range(0, n, chunk):
        best[i : i + chunk], assign[i : i + chunk] = _sqdist(data[i : i + chunk], centres, c_norm).min(1)
    return centres, assign


def build_vocabulary(
    trajectories: np.ndarray,
    k: int = 8192,
    iters: int = 50,
    seed: int = 0,
    heading_weight: float = 1.0,
    device: str = "cpu",
) -> np.ndarray:
    """Trajectories (N, 40, 3) -> vocabulary (k, 40, 3) float32 (k-means centres, heading rescaled back)."""
    import torch

    if trajectories.ndim != 3 or trajectories.shape[2] != 3:
        raise ValueError(f"expected trajectories (N, T, 3), got shape {trajectories.shape}")
    if not 1 <= k <= len(trajectories):
        raise ValueError(f"--k {k}: expected 1 … {len(trajectories)} (the number of trajectories)")
    if iters < 1:
        raise ValueError(f"--iters {iters}: expected ≥ 1")
    if not np.isfinite(trajectories).all():
        raise ValueError("trajectories hold NaN/inf; expected finite poses")
    x = torch.as_tensor(trajectories, dtype=torch.float64, device=device).clone()
    x[..., 2] *= heading_weight
    centres, _ = kmeans(x.reshape(len(x), -1), k, iters=iters, seed=seed)
    c = centres.reshape(k, *trajectories.shape[1:])
    c[..., 2] /= heading_weight
    return c.cpu().numpy().astype(np.float32)


def trajectories_from_scenes(root: Path) -> np.ndarray:
    """Logged human trajectories (40 poses at 0.1 s) of every scene file under `root`."""
    from training.scoring.scene import load_scene_json
    from training.scoring.teachers import scene_files

    out = []
    for p in scene_files(root):
        s = load_scene_json(p)
        if s.human_poses_40 is not None:
            out.append(s.human_poses_40.numpy())
    if not out:
        raise ValueError(f"{root}: no scene files with 40-pose human trajectories")
    return np.stack(out)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa vocab", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build", help="k-means over training trajectories")
    src = b.add_mutually_exclusive_group(required=True)
    src.add_argument("--trajectories", type=Path, help="(N, 40, 3) .npy of ego-frame trajectories")
    src.add_argument("--scenes", type=Path, help="dir of scene files: use their logged human trajectories")
    b.add_argument("--out", type=Path, required=True, help="output .npy")
    b.add_argument("--k", type=int, default=8192)
    b.add_argument("--iters", type=int, default=50)
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--heading-weight", type=float, default=1.0, help="metres per radian in the k-means metric")
    b.add_argument("--device", default="cpu")
    s = sub.add_parser("show", help="load a vocabulary (default: the published one) and print a summary")
    s.add_argument(
        "path", nargs="?", default=DEFAULT_VOCABULARY, help="a .npy file or a shipped vocabulary's name (navsim_8192)"
    )
    s.add_argument("--verify", action="store_true", help="check the published SHA-256")
    return p


def main(argv: list[str]) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.cmd == "show":
            v = load_vocabulary(args.path, verify=args.verify)
            print(
                f"{vocabulary_file(args.path)}: shape {v.shape} {v.dtype}; "
                f"x {v[..., 0].min():.1f}..{v[..., 0].max():.1f} m, "
                f"y {v[..., 1].min():.1f}..{v[..., 1].max():.1f} m, heading {v[..., 2].min():.2f}.."
                f"{v[..., 2].max():.2f} rad" + (" (published SHA-256 ok)" if args.verify else "")
            )
            return 0
        data = (
            read_pose_array(args.trajectories, "trajectories")
            if args.trajectories
            else trajectories_from_scenes(args.scenes)
        )
        vocab = build_vocabulary(data, args.k, args.iters, args.seed, args.heading_weight, args.device)
        with atomic_file(args.out, "wb") as f:
            np.save(f, vocab)
        print(f"{args.out}: vocabulary {vocab.shape} from {len(data)} trajectories")
        return 0
    except (ValueError, OSError) as e:
        print(f"vocab: {e}", file=sys.stderr)
        return 2
