"""`drive-jepa learn`: collect → teachers → cache → pretrain → train → evaluate → ship, one resumable pipeline.

Every stage is one of the project's own commands, run as a child process (`python -m drive_jepa …`, no shell)
with its output in `<out>/logs/<stage>.log`; each of those commands resumes by itself, so an interrupted stage
continues where it stopped when the pipeline is run again. `<out>/pipeline.json` records per stage its status,
command, start / end time and wall seconds; finished stages are skipped (`--redo STAGE` runs one again).

Stages (default order; `--stages a,b` picks some):

* `collect`  — `drive-jepa collect`: the privileged expert with noise injection on generated scenario routes
  (never an evaluation route nor within 50 m of one of its trigger points), Bench2Drive layout, `<out>/data`;
* `teachers` — `drive-jepa teachers --source bench2drive`: the vocabulary scored on the clips (EPDMS ≥ 0.95) plus
  sub-score labels of 32 rows per scene for the scorer head, `<out>/teachers`;
* `cache`    — `drive-jepa cache-data`: decoded, resized model inputs, `<out>/cache`;
* `pretrain` — `drive-jepa pretrain`: V-JEPA on the collected front-camera video (tiny ViT), `<out>/pretrain`;
* `train`    — `drive-jepa train`: the proposal-centric planner with MTD and the scorer head on the clips, encoder
  initialised from the pretraining, `<out>/planner`; ablations (`--ablations`): `planner_human` (MTD off, λ = 0)
  and `planner_scratch` (encoder not pretrained);
* `eval`     — `drive-jepa lite` on the evaluation routes for each model and seed (`<out>/eval/<name>/seed<k>_part<j>
  .json`, resumable per route), the route follower and the lite expert beside them (`--no-eval-baselines`: not),
  `drive-jepa report` of them side by side and `drive-jepa eval-table`; `--eval-argmax` adds the trained model with
  argmax instead of momentum selection. A model trained again since its evaluation gets a fresh one (the old
  records move to `<out>/eval_stale/`);
* `ship`     — the trained checkpoint's final step (safetensors + model.yaml + metadata) and a model card with
  the data, steps, wall time per stage, machine and evaluation numbers, written to `--ship-to`.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from drive_jepa.atomic import write_json_atomic
from training.scoring.vocab import DEFAULT_VOCABULARY, SHIPPED

STAGES = ("collect", "teachers", "cache", "pretrain", "train", "eval", "ship")
ROOT = Path(__file__).resolve().parents[1]
EVAL_ROUTES = ROOT / "carla_tools" / "lite" / "routes" / "bench2drive220_lite.xml"
DEFAULT_ROUTES = (  # carla_tools.lite.collect.TRAINING_ROUTES (not imported: training may not import carla_tools)
    ROOT / "carla_tools" / "lite" / "routes" / "bench2drive_lite_generated.xml",
    ROOT / "carla_tools" / "lite" / "routes" / "bench2drive_lite_generated_seed1.xml",
)
DEFAULT_VOCAB = SHIPPED[DEFAULT_VOCABULARY]

# The lite Drive-JEPA planner: V-JEPA tiny encoder (96 × 2 layers) on 2 × 128 × 256 frames, 16 proposals × 8 poses,
# 2 refinements; it reads the command and the route's target point, not the ego's own motion, and its scorer has an
# imitation head beside the simulator sub-scores (`drive-jepa train` overrides).
LITE_MODEL = (
    "model.image_height=128",
    "model.image_width=256",
    "model.encoder.kind=vjepa",
    "model.encoder.vjepa_size=tiny",
    "model.encoder.dim=96",
    "model.proposal.num_proposals=16",
    "model.proposal.iterations=2",
    "model.proposal.d_model=96",
    "model.proposal.heads=4",
    "model.proposal.ffn=256",
    "model.ego_motion_input=false",
    "model.target_point_input=true",
    "model.proposal.imitation_score=true",
)
# Training settings of every lite run (a `--train-override` of the same key replaces them), against the "stand still
# forever" shortcut of a planner that sees two identical frames: 5 % of the standing-still samples kept (64 % of the
# collected ones), the start samples (standing, then driving off) three times.
LITE_TRAIN = ("standing_keep=0.05", "start_repeat=3")


@dataclass
class LearnConfig:
    out: Path
    routes: tuple[Path, ...] = DEFAULT_ROUTES
    seeds: tuple[int, ...] = (0,)  # lite-world seeds of the collection
    workers: int = 2
    vocab: Path = DEFAULT_VOCAB
    teacher_every_s: float = 4.0
    teacher_budget_s: float = 0.0  # wall-time budget of the teachers stage (0: score every scene)
    pretrain_steps: int = 600
    pretrain_batch: int = 16
    train_steps: int = 2250
    train_batch: int = 32
    threads: int = 2
    ablations: bool = False
    eval_routes: Path = EVAL_ROUTES
    eval_seeds: tuple[int, ...] = (0,)
    eval_argmax: bool = False
    eval_baselines: bool = True  # also the route follower and the lite expert (cheap; resumed like the rest)
    ship_to: Path | None = None
    extra_train: tuple[str, ...] = field(default_factory=tuple)


def _py(*args: str) -> list[str]:
    return [sys.executable, "-m", "drive_jepa", *args]


def models(cfg: LearnConfig) -> dict[str, tuple[str, ...]]:
    """Training runs: name -> extra `drive-jepa train` overrides."""
    pre = f"model.encoder.vjepa_checkpoint={cfg.out / 'pretrain' / 'latest.pt'}"
    runs: dict[str, tuple[str, ...]] = {"planner": (pre,)}
    if cfg.ablations:
        runs["planner_human"] = (pre, "loss.mtd_weight=0")
        runs["planner_scratch"] = ()
    return runs


def _without_overridden(defaults: Sequence[str], overrides: Sequence[str]) -> list[str]:
    """`defaults` minus the `key=value` items whose key one of `overrides` sets."""
    keys = {o.split("=", 1)[0].lstrip("+~") for o in overrides}
    return [x for x in defaults if x.split("=", 1)[0] not in keys]


def train_command(cfg: LearnConfig, name: str, extra: Sequence[str]) -> list[str]:
    d = cfg.out
    later = (*extra, *cfg.extra_train)
    return _py(
        "train",
        "data=bench2drive",
        f"data.root={d / 'data' / 'clips'}",
        f"data.cache_dir={d / 'cache'}",
        f"data.teacher_index={d / 'teachers'}",
        *_without_overridden((*LITE_MODEL, *LITE_TRAIN), later),
        *extra,
        f"vocabulary={cfg.vocab}",
        f"steps={cfg.train_steps}",
        f"batch_size={cfg.train_batch}",
        f"threads={cfg.threads}",
        "checkpoint_every=250",
        "log_every=25",
        f"out={d / name}",
        *cfg.extra_train,
    )


def stage_commands(cfg: LearnConfig, stage: str) -> list[list[str]]:
    """The commands of one stage, in order (eval's are built when it runs: they depend on what trained)."""
    d = cfg.out
    if stage == "collect":
        return [
            _py(
                "collect",
                *map(str, cfg.routes),
                "--out",
                str(d / "data"),
                "--seeds",
                ",".join(map(str, cfg.seeds)),
                "--workers",
                str(cfg.workers),
                "--exclude",
                str(cfg.eval_routes),
            )
        ]
    if stage == "teachers":  # one process per shard of the clips (`teacher_shards`), merged afterwards
        return [
            _py(
                "teachers",
                "--source",
                "bench2drive",
                "--scenes",
                str(d / "teachers" / f"shard{k}" / "clips"),
                "--vocab",
                str(cfg.vocab),
                "--out",
                str(d / "teachers" / f"shard{k}"),
                "--every",
                str(cfg.teacher_every_s),
                "--map-radius",
                "70",
                "--threads",
                "1",
                "--max-seconds",
                str(cfg.teacher_budget_s),
                "--no-progress",
            )
            for k in range(cfg.workers)
        ]
    if stage == "cache":
        return [
            _py(
                "cache-data",
                "data=bench2drive",
                f"data.root={d / 'data' / 'clips'}",
                f"data.cache_dir={d / 'cache'}",
                "data.image.out_width=256",
                "data.image.out_height=128",
            )
        ]
    if stage == "pretrain":
        return [
            _py(
                "pretrain",
                "model=tiny",
                "data.kind=bench2drive",
                f"data.root={d / 'data' / 'clips'}",
                "data.height=128",
                "data.width=256",
                "data.crop_top=50",
                "data.crop_bottom=50",
                "data.workers=0",
                f"run.steps={cfg.pretrain_steps}",
                f"run.batch_size={cfg.pretrain_batch}",
                "run.ckpt_every=100",
                "run.log_every=20",
                "run.tensorboard=false",
                f"run.out_dir={d / 'pretrain'}",
            )
        ]
    if stage == "train":
        return [train_command(cfg, name, extra) for name, extra in models(cfg).items()]
    return []


def eval_runs(cfg: LearnConfig) -> list[tuple[str, list[str] | None]]:
    """(run name, `agent-config` arguments, None for the lite expert) of the evaluation: every trained model, argmax
    selection (`--eval-argmax`), and the baselines (`--eval-baselines`): the route follower and the expert."""
    ckpt = ["model=checkpoint", "threads=1"]
    runs: list[tuple[str, list[str] | None]] = [(name, [*ckpt, f"checkpoint={cfg.out / name}"]) for name in models(cfg)]
    if cfg.eval_argmax:
        runs.append(("planner_argmax", [*ckpt, f"checkpoint={cfg.out / 'planner'}", "selection=argmax"]))
    if cfg.eval_baselines:
        runs += [("route_follower", ["model=route_follow"]), ("expert", None)]
    return runs


def evaluated_checkpoint(args: list[str] | None) -> Path | None:
    """The checkpoint folder an evaluation run's agent-config arguments name (None: a baseline)."""
    for a in args or []:
        if a.startswith("checkpoint="):
            return Path(a.split("=", 1)[1])
    return None


def checkpoint_fingerprint(run_dir: Path) -> dict[str, str]:
    """Which weights a training run's latest checkpoint holds: its step folder and the weights' SHA-256."""
    import hashlib

    from agent.planner.checkpoint import resolve_checkpoint

    step = resolve_checkpoint(run_dir / "checkpoints")
    digest = hashlib.sha256((step / "model.safetensors").read_bytes()).hexdigest()
    return {"checkpoint": str(step), "sha256": digest}


def eval_commands(cfg: LearnConfig) -> list[list[str]]:
    from drive_jepa.routes import load_routes

    d = cfg.out
    cmds = []
    # routes dealt longest-first over `workers` shards (balanced wall time); a shard is a `--route-ids` list
    routes = sorted(load_routes(cfg.eval_routes), key=lambda r: -len(r.waypoints))
    shards = [[r.id for r in routes[k :: cfg.workers]] for k in range(cfg.workers)]
    shards = [s for s in shards if s]
    for name, agent_args in eval_runs(cfg):
        agent: list[str] = []  # the lite expert: `drive-jepa lite`'s default agent
        if agent_args is not None:
            agent_yaml = d / "eval" / name / "agent.yaml"
            cmds.append(_py("agent-config", *agent_args, "--out", str(agent_yaml)))
            agent = ["--agent", str(ROOT / "agent" / "leaderboard_agent.py"), "--agent-config", str(agent_yaml)]
        for seed in cfg.eval_seeds:
            for part, ids in enumerate(shards):  # one route runner per core, each on a share of the routes
                cmds.append(
                    _py(
                        "lite",
                        str(cfg.eval_routes),
                        *agent,
                        "--seed",
                        str(seed),
                        "--route-ids",
                        ",".join(ids),
                        "--out",
                        str(d / "eval" / name / f"seed{seed}_part{part}.json"),
                        "--metric-dir",
                        str(d / "eval" / name / f"metric_seed{seed}"),
                    )
                )
    return cmds


# ------------------------------------------------------------------------------------------------------ running
class Pipeline:
    def __init__(self, cfg: LearnConfig) -> None:
        self.cfg = cfg
        self.state_path = cfg.out / "pipeline.json"
        self.state: dict[str, Any] = {"stages": {}}
        if self.state_path.is_file():
            self.state = json.loads(self.state_path.read_text())
        self.state["config"] = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(cfg).items()}
        self.state["config"] = json.loads(json.dumps(self.state["config"], default=str))

    def save(self) -> None:
        write_json_atomic(self.state_path, self.state)

    def _run(self, cmd: list[str], log: Path) -> int:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "a") as f:
            f.write(f"\n$ {' '.join(cmd)}\n")
            f.flush()
            return subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT).returncode

    def run_stage(self, stage: str, redo: bool = False) -> bool:
        st = self.state["stages"].get(stage, {})
        if st.get("status") == "done" and not redo:
            print(f"learn: {stage}: done before ({st.get('wall_s', 0):.0f} s), skipped")
            return True
        if stage == "teachers":
            self._shard_clips()
        if stage == "eval":
            self._set_aside_stale_evaluations()
            cmds = eval_commands(self.cfg)
        elif stage == "ship":
            cmds = []
        else:
            cmds = stage_commands(self.cfg, stage)
        t0 = time.time()
        prev = float(st.get("wall_s", 0.0)) if st.get("status") != "done" else 0.0  # an interrupted try counts too
        st = {"status": "running", "started": _now(), "commands": [" ".join(c) for c in cmds], "wall_s": prev}
        self.state["stages"][stage] = st
        self.save()
        print(f"learn: {stage}: {len(cmds)} command(s), log {self.cfg.out / 'logs' / (stage + '.log')}", flush=True)
        ok = True
        if stage == "ship":
            ok = self.ship()
        elif stage == "eval":
            ok = self._parallel("eval", cmds, lambda c: c[3] == "lite")
            report = report_command(self.cfg)
            if report is not None:  # the HTML / Markdown report, runs side by side (first seed)
                self._run(report, self.cfg.out / "logs" / "eval.log")
            eval_dir = self.cfg.out / "eval"
            if eval_dir.is_dir():  # OUT/eval/table.md + table.json (bench2drive's `eval-table` command)
                self._run(
                    _py("eval-table", str(eval_dir), "--routes", str(self.cfg.eval_routes)),
                    eval_dir.parent / "logs" / "eval.log",
                )
                if (eval_dir / "table.json").is_file():
                    self.state["eval"] = json.loads((eval_dir / "table.json").read_text())
                    print((eval_dir / "table.md").read_text())
        elif stage == "teachers":
            ok = self._parallel("teachers", cmds, lambda c: True, ok_codes=(0, 1)) and self._merge_teachers()
        else:
            for cmd in cmds:
                rc = self._run(cmd, self.cfg.out / "logs" / f"{stage}.log")
                if rc not in (0,) and not (stage == "teachers" and rc == 1):  # teachers: 1 = some logs skipped
                    print(f"learn: {stage}: `{' '.join(cmd[2:5])} …` exited {rc}; see the log", file=sys.stderr)
                    ok = False
                    break
        st["wall_s"] = round(prev + time.time() - t0, 1)
        st["finished"] = _now()
        st["status"] = "done" if ok else "failed"
        self.save()
        print(f"learn: {stage}: {st['status']} in {time.time() - t0:.0f} s", flush=True)
        return ok

    def _set_aside_stale_evaluations(self) -> None:
        """A model's evaluation folder holds the records of the weights it evaluated (`evaluated.json`); when the
        model was trained again since, the folder moves to `OUT/eval_stale/<run>-<sha8>` (nothing is deleted) and
        the run starts afresh, so that resumed routes never mix two models."""
        for name, agent_args in eval_runs(self.cfg):
            ckpt = evaluated_checkpoint(agent_args)
            if ckpt is None:
                continue
            run_dir = self.cfg.out / "eval" / name
            try:
                now = checkpoint_fingerprint(ckpt)
            except (FileNotFoundError, OSError):
                continue  # not trained: `agent-config` says so in the eval log
            mark = run_dir / "evaluated.json"
            if run_dir.is_dir() and any(run_dir.glob("seed*.json")):
                before = json.loads(mark.read_text()) if mark.is_file() else {"sha256": "unknown"}
                if before.get("sha256") != now["sha256"]:
                    aside = self.cfg.out / "eval_stale" / f"{name}-{str(before.get('sha256'))[:8]}"
                    aside.parent.mkdir(parents=True, exist_ok=True)
                    run_dir.rename(aside)
                    print(f"learn: eval: {name} was evaluated with other weights (sha256 "
                          f"{str(before.get('sha256'))[:8]}…, now {now['sha256'][:8]}…); its records moved to "
                          f"{aside}")  # fmt: skip
            run_dir.mkdir(parents=True, exist_ok=True)
            write_json_atomic(mark, now)

    def _shard_clips(self) -> None:
        """`teachers/shard<k>/clips/<clip>` symlinks: clip i goes to shard i mod workers (stable as clips grow)."""
        clips = sorted(p for p in (self.cfg.out / "data" / "clips").glob("*") if (p / "anno").is_dir())
        for i, clip in enumerate(clips):
            link = self.cfg.out / "teachers" / f"shard{i % self.cfg.workers}" / "clips" / clip.name
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(clip.resolve(), target_is_directory=True)

    def _merge_teachers(self) -> bool:
        """The shards' indexes as one `teachers/teachers.jsonl` (sorted by scene id; rewritten atomically)."""
        from drive_jepa.atomic import atomic_file
        from training.scoring.teachers import INDEX_NAME, read_index

        rows = [r for k in range(self.cfg.workers)
                for r in read_index(self.cfg.out / "teachers" / f"shard{k}" / INDEX_NAME)]  # fmt: skip
        rows.sort(key=lambda r: str(r["scene_id"]))
        with atomic_file(self.cfg.out / "teachers" / INDEX_NAME) as f:
            for r in rows:
                f.write(json.dumps(r) + "\n")
        if not rows:
            print(f"learn: teachers: no scene scored (clips under {self.cfg.out / 'data' / 'clips'}?)", file=sys.stderr)
            return False
        print(f"learn: teachers: {len(rows)} scenes, {sum(len(r['teachers']) for r in rows)} teachers")
        return True

    def _parallel(self, stage: str, cmds: list[list[str]], parallel: Any, ok_codes: tuple[int, ...] = (0,)) -> bool:
        """Commands for which `parallel(cmd)` is false run first, in order; then the others `workers` at a time
        (evaluation: one route runner per core with 1 torch thread; teachers: one shard per core)."""
        log = self.cfg.out / "logs" / f"{stage}.log"
        runs = [c for c in cmds if parallel(c)]
        for c in cmds:
            if c not in runs and self._run(c, log) != 0:
                return False
        log.parent.mkdir(parents=True, exist_ok=True)
        pending = list(runs)
        active: list[tuple[subprocess.Popen[bytes], Any]] = []
        ok = True
        while pending or active:
            while pending and len(active) < max(1, self.cfg.workers):
                c = pending.pop(0)
                dest = Path(c[c.index("--out") + 1])
                name = dest.parent.name + "_" + dest.stem if stage == "eval" else str(dest)
                f = open(self.cfg.out / "logs" / f"{stage}_{Path(name).name}.log", "a")  # noqa: SIM115 (closed below)
                active.append((subprocess.Popen(c, stdout=f, stderr=subprocess.STDOUT, cwd=ROOT), f))
            time.sleep(2.0)
            for p, f in list(active):
                if p.poll() is not None:
                    f.close()
                    active.remove((p, f))
                    ok = ok and p.returncode in ok_codes
        return ok

    def ship(self) -> bool:
        from agent.planner.checkpoint import resolve_checkpoint

        src = resolve_checkpoint(self.cfg.out / "planner" / "checkpoints")
        dest = self.cfg.ship_to or self.cfg.out / "ship"
        dest.mkdir(parents=True, exist_ok=True)
        for f in src.iterdir():
            if f.is_file() and f.name != "trainer.pt":
                shutil.copy2(f, dest / f.name)
        card = {
            "model": "Drive-JEPA lite (V-JEPA tiny encoder, proposal-centric planner, MTD, scorer head)",
            "source_step": src.name,
            "machine": f"{platform.machine()} {os.cpu_count()} cores, {platform.platform()}",
            "stages": {
                k: {"wall_s": v.get("wall_s"), "status": v.get("status")} for k, v in self.state["stages"].items()
            },
            "config": self.state["config"],
            "data": _data_summary(self.cfg.out),
            "evaluation": self.state.get("eval", []),
        }
        write_json_atomic(dest / "card.json", card)
        print(f"learn: shipped {src} → {dest}")
        return True


def report_command(cfg: LearnConfig) -> list[str] | None:
    """`drive-jepa report` of every run under `OUT/eval` (its first seed; shards joined by commas), side by side."""
    eval_dir = cfg.out / "eval"
    runs: list[tuple[str, str]] = []
    metric_dirs: list[Path] = []  # per run, the first seed's metric_info.json folder (comfort in the report)
    for run_dir in sorted(p for p in eval_dir.iterdir() if p.is_dir()) if eval_dir.is_dir() else []:
        files = sorted(run_dir.glob("seed*.json"))
        if files:
            first = files[0].stem.split("_")[0]
            runs.append((run_dir.name, ",".join(str(f) for f in files if f.stem.split("_")[0] == first)))
            metric_dirs.append(run_dir / f"metric_{first}")
    if not runs:
        return None
    names = [a for name, _ in runs for a in ("--name", name)]
    metric = [a for m in metric_dirs for a in ("--metric-dir", str(m))] if all(m.is_dir() for m in metric_dirs) else []
    return _py(
        "report", *[f for _, f in runs], "--routes", str(cfg.eval_routes), *names, *metric,
        "--out", str(eval_dir / "report"),
    )  # fmt: skip


def _data_summary(out: Path) -> dict[str, Any]:
    rows: list[dict[str, Any]] = []
    manifest = out / "data" / "collect.jsonl"
    if manifest.is_file():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    ok = [r for r in rows if "error" not in r]
    return {
        "clips": len(ok),
        "frames_10hz": sum(int(r.get("frames", 0)) for r in ok),
        "expert_mean_ds": round(sum(float(r["driving_score"]) for r in ok) / max(1, len(ok)), 2),
    }


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="drive-jepa learn", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--out", type=Path, required=True, help="pipeline folder (data, teachers, models, eval, logs)")
    p.add_argument("--stages", default=",".join(STAGES), help=f"comma-separated subset of {','.join(STAGES)}")
    p.add_argument("--redo", action="append", default=[], help="run this stage again although it finished")
    p.add_argument("--routes", type=Path, action="append", default=None, help="collection route XML (repeatable)")
    p.add_argument("--seeds", default="0", help="lite-world seeds of the collection")
    p.add_argument("--workers", type=int, default=2, help="parallel routes (collection, evaluation)")
    p.add_argument("--vocab", type=Path, default=DEFAULT_VOCAB, help="(V, 40, 3) trajectory vocabulary")
    p.add_argument("--teacher-every", type=float, default=4.0, help="one teacher scene every N seconds of a clip")
    p.add_argument(
        "--teacher-budget",
        type=float,
        default=0.0,
        help="minutes the teachers stage may score (0: all scenes); scenes left are scored by a later run",
    )
    p.add_argument("--pretrain-steps", type=int, default=600)
    p.add_argument("--train-steps", type=int, default=2250)
    p.add_argument("--train-batch", type=int, default=32)
    p.add_argument("--threads", type=int, default=2, help="torch threads of the training stages")
    p.add_argument(
        "--train-override",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra `drive-jepa train` override for every training run (repeatable), e.g. standing_keep=0.25",
    )
    p.add_argument("--ablations", action="store_true", help="also train MTD-off and not-pretrained planners")
    p.add_argument("--eval-routes", type=Path, default=EVAL_ROUTES)
    p.add_argument("--eval-seeds", default="0", help="lite-world seeds of the evaluation")
    p.add_argument("--eval-argmax", action="store_true", help="also evaluate argmax instead of momentum selection")
    p.add_argument(
        "--no-eval-baselines", action="store_true",
        help="evaluate only the trained models (default: also the route follower and the lite expert)",
    )  # fmt: skip
    p.add_argument("--ship-to", type=Path, default=None, help="where `ship` writes the checkpoint (default OUT/ship)")
    p.add_argument("--dry-run", action="store_true", help="print the stages' commands and exit")
    return p


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        out = tuple(int(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise ValueError(f"{what} {text!r}: expected comma-separated integers") from None
    if not out:
        raise ValueError(f"{what}: at least one value")
    return out


def main(argv: list[str]) -> int:
    ns = _parser().parse_args(argv)
    stages = [s for s in ns.stages.split(",") if s]
    bad = [s for s in stages + ns.redo if s not in STAGES]
    if bad:
        print(f"drive-jepa learn: unknown stage(s) {bad}; stages: {', '.join(STAGES)}", file=sys.stderr)
        return 2
    try:
        cfg = LearnConfig(
            out=ns.out,
            routes=tuple(ns.routes or DEFAULT_ROUTES),
            seeds=_ints(ns.seeds, "--seeds"),
            workers=max(1, ns.workers),
            vocab=ns.vocab,
            teacher_every_s=ns.teacher_every,
            teacher_budget_s=60.0 * ns.teacher_budget,
            pretrain_steps=ns.pretrain_steps,
            train_steps=ns.train_steps,
            train_batch=ns.train_batch,
            threads=ns.threads,
            ablations=ns.ablations,
            eval_routes=ns.eval_routes,
            eval_seeds=_ints(ns.eval_seeds, "--eval-seeds"),
            eval_argmax=ns.eval_argmax,
            eval_baselines=not ns.no_eval_baselines,
            ship_to=ns.ship_to,
            extra_train=tuple(ns.train_override),
        )
    except ValueError as exc:
        print(f"drive-jepa learn: {exc}", file=sys.stderr)
        return 2
    # children run in the project root: every path the user gave is taken relative to where they ran the command
    cfg.out, cfg.vocab, cfg.eval_routes = cfg.out.resolve(), cfg.vocab.resolve(), cfg.eval_routes.resolve()
    cfg.routes = tuple(Path(p).resolve() for p in cfg.routes)
    if cfg.ship_to is not None:
        cfg.ship_to = cfg.ship_to.resolve()
    missing = [p for p in (*cfg.routes, cfg.vocab, cfg.eval_routes) if not Path(p).is_file()]
    if missing and any(s in stages for s in ("collect", "teachers", "train", "eval")):
        print(f"drive-jepa learn: file not found: {missing[0]}", file=sys.stderr)
        return 2
    if ns.dry_run:
        for s in stages:
            for c in stage_commands(cfg, s) if s != "eval" else eval_commands(cfg):
                print(f"[{s}] {' '.join(c)}")
        return 0
    cfg.out.mkdir(parents=True, exist_ok=True)
    pipe = Pipeline(cfg)
    t0 = time.time()
    for s in stages:
        if not pipe.run_stage(s, redo=s in ns.redo):
            return 1
    print(f"learn: {len(stages)} stage(s) in {time.time() - t0:.0f} s; state {pipe.state_path}")
    return 0
