"""Process-group setup from the torchrun environment; a single process when it is absent."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class DistInfo:
    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """`auto` -> cuda:LOCAL_RANK when CUDA is available, else cpu."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("run.device=cuda but no CUDA device is available")
        return torch.device("cuda", local_rank)
    if name != "cpu":
        raise ValueError(f"run.device {name!r}: expected auto, cpu or cuda")
    return torch.device("cpu")


def init_distributed(device: str) -> DistInfo:
    """Join the torchrun process group (`RANK`, `WORLD_SIZE`, `LOCAL_RANK`, `MASTER_ADDR/PORT` in the env):
    NCCL on CUDA, gloo on CPU. Without those variables (or WORLD_SIZE 1): rank 0 of 1, no process group."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = pick_device(device, local)
    if world > 1 and not torch.distributed.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        torch.distributed.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank, world, local, dev)


def shutdown(info: DistInfo) -> None:
    if info.distributed and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def all_reduce_mean(x: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.distributed:
        x = x.clone()
        torch.distributed.all_reduce(x)
        x /= info.world_size
    return x


@torch.no_grad()
def check_same_across_ranks(module: torch.nn.Module, info: DistInfo, what: str) -> None:
    """Raise when `module`'s parameters differ between ranks (compares a float64 checksum per rank)."""
    if not info.distributed:
        return
    total = torch.stack([p.detach().double().abs().sum() for p in module.parameters()]).sum().reshape(1)
    total = total.to(info.device)
    gathered = [torch.zeros_like(total) for _ in range(info.world_size)]
    torch.distributed.all_gather(gathered, total)
    values = [float(g) for g in gathered]
    if any(v != values[0] for v in values):
        raise RuntimeError(f"{what} differs between ranks (checksums {values})")
