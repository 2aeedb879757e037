"""`drive-jepa doctor`: check this machine's setup for training and evaluation, and say how to fix each miss.

Checks: Python; torch, CUDA and GPUs; the model stack (timm, hydra); the CARLA 0.9.15 client and its version;
`CARLA_ROOT` with `CarlaUE4.sh`; `BENCH2DRIVE_ROOT` with the leaderboard, scenario_runner and CARLA's `agents`
package importable together (checked in a subprocess with the PYTHONPATH the evaluation harness uses); navsim and
its data roots; video decoding (PyAV and OpenCV). Core misses exit 1; optional misses are reported as warnings
(exit 0) unless `--strict`. Roots can be given as flags instead of environment variables.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

OK, WARN, FAIL = "ok", "warn", "fail"
CARLA_VERSION = "0.9.15"


@dataclass
class Check:
    name: str
    status: str
    detail: str
    fix: str = ""
    required: bool = False


def _dist_version(*names: str) -> str | None:
    for name in names:
        try:
            return version(name)
        except PackageNotFoundError:
            continue
    return None


def check_python() -> Check:
    v = sys.version_info
    ok = v >= (3, 10)
    return Check(
        "python",
        OK if ok else FAIL,
        f"{platform.python_version()} at {sys.executable}",
        "" if ok else "use Python ≥ 3.10 (3.11 recommended: `uv python install 3.11`)",
        required=True,
    )


def check_torch() -> list[Check]:
    try:
        torch = import_module("torch")
    except ImportError as exc:
        return [Check("torch", FAIL, f"not importable ({exc})", "`uv sync` in the project", required=True)]
    out = [Check("torch", OK, f"{torch.__version__}", required=True)]
    if torch.cuda.is_available():
        names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        bf16 = torch.cuda.is_bf16_supported()
        out.append(
            Check("cuda", OK, f"CUDA {torch.version.cuda}; {len(names)} GPU(s): {', '.join(names)}; bf16={bf16}")
        )
    else:
        built = torch.version.cuda or "none (CPU build)"
        out.append(
            Check(
                "cuda",
                WARN,
                f"no usable GPU (torch built with CUDA {built}); training and the agent run on CPU, slowly",
                "install an NVIDIA driver matching the CUDA build; check `nvidia-smi`",
            )
        )
    return out


def check_model_stack() -> list[Check]:
    out = []
    for mod, dist in (
        ("timm", "timm"),
        ("hydra", "hydra-core"),
        ("cv2", "opencv-python-headless"),
        ("numpy", "numpy"),
    ):
        try:
            import_module(mod)
            out.append(Check(dist, OK, _dist_version(dist, "opencv-python") or "importable", required=True))
        except ImportError as exc:
            out.append(Check(dist, FAIL, f"not importable ({exc})", "`uv sync` in the project", required=True))
    return out


def check_carla_client() -> Check:
    try:
        import_module("carla")
    except ImportError as exc:
        return Check(
            "carla client",
            WARN,
            f"`import carla` failed ({exc})",
            "Python 3.11: `uv sync --extra carla` (PyPI `carla-0-9-15`); other Pythons: "
            "`uv pip install $CARLA_ROOT/PythonAPI/carla/dist/carla-0.9.15-cp3X-*.whl`",
        )
    dist = _dist_version("carla-0-9-15")
    ver = CARLA_VERSION if dist else _dist_version("carla")
    if ver is None or not ver.startswith(CARLA_VERSION):
        return Check(
            "carla client",
            WARN,
            f"importable but version {ver or 'unknown'}; Bench2Drive needs the {CARLA_VERSION} client",
            "install the 0.9.15 client (client and server versions must match)",
        )
    return Check("carla client", OK, f"{CARLA_VERSION}" + (" (PyPI carla-0-9-15)" if dist else ""))


def check_carla_root(carla_root: str | None) -> Check:
    if not carla_root:
        return Check(
            "CARLA_ROOT",
            WARN,
            "not set: closed-loop evaluation in CARLA is unavailable (the lite world still works)",
            "download CARLA 0.9.15, then `export CARLA_ROOT=/path/to/CARLA_0.9.15` or pass --carla-root",
        )
    script = Path(carla_root) / "CarlaUE4.sh"
    if not script.is_file():
        return Check("CARLA_ROOT", FAIL, f"{script} not found", "point CARLA_ROOT at the unpacked CARLA 0.9.15 folder")
    if not os.access(script, os.X_OK):
        return Check("CARLA_ROOT", FAIL, f"{script} is not executable", f"`chmod +x {script}`")
    return Check("CARLA_ROOT", OK, str(script))


def harness_pythonpath(bench2drive_root: str, carla_root: str | None) -> list[str]:
    """The PYTHONPATH entries Bench2Drive's evaluator needs (leaderboard, scenario_runner, CARLA's PythonAPI)."""
    root = Path(bench2drive_root)
    paths = [str(root / "leaderboard"), str(root / "scenario_runner")]
    if carla_root:
        paths.append(str(Path(carla_root) / "PythonAPI" / "carla"))
    return paths


def check_bench2drive(b2d_root: str | None, carla_root: str | None) -> Check:
    if not b2d_root:
        return Check(
            "BENCH2DRIVE_ROOT",
            WARN,
            "not set: `drive-jepa eval world=carla` needs Bench2Drive's leaderboard and scenario_runner",
            "`git clone https://github.com/Thinklab-SJTU/Bench2Drive` then `export BENCH2DRIVE_ROOT=...` "
            "(or --bench2drive-root) and `uv sync --extra carla`",
        )
    root = Path(b2d_root)
    missing = [
        p
        for p in ("leaderboard/leaderboard/leaderboard_evaluator.py", "scenario_runner/srunner")
        if not (root / p).exists()
    ]
    if missing:
        return Check("BENCH2DRIVE_ROOT", FAIL, f"{root}: missing {', '.join(missing)}", "clone Bench2Drive fully")
    # what the evaluator process itself imports (leaderboard_evaluator pulls pkg_resources, and pexpect through
    # agent_wrapper → ros_base_agent), not only the agent base class
    code = (
        "import leaderboard.autoagents.autonomous_agent, srunner.scenariomanager.carla_data_provider;"
        "import agents.navigation.local_planner;"
        "import leaderboard.leaderboard_evaluator"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(harness_pythonpath(b2d_root, carla_root)))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=False
        )
    except subprocess.TimeoutExpired:
        return Check("BENCH2DRIVE_ROOT", FAIL, "importing the leaderboard timed out (120 s)", "check the install")
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["unknown error"])[-1]
        fix = "`uv sync --extra carla` (py-trees==0.8.3, dictor, pexpect, setuptools<81 for pkg_resources, ...)"
        if "agents" in last:
            fix = "set CARLA_ROOT so $CARLA_ROOT/PythonAPI/carla (CARLA's `agents` package) is on PYTHONPATH"
        return Check("BENCH2DRIVE_ROOT", FAIL, f"leaderboard/scenario_runner/agents not importable: {last}", fix)
    return Check("BENCH2DRIVE_ROOT", OK, f"{root}: leaderboard, scenario_runner and agents importable")


def check_navsim() -> list[Check]:
    """navsim and nuplan-devkit: versions, where they are installed, and whether the parts we use import (the
    scorer path `navsim.evaluate.pdm_score`, the evaluation script's module, the metric-cache classes)."""
    out = []
    fix = ("build the navsim environment: `tools/navsim_env.sh NAVSIM_SRC NUPLAN_SRC` (docs/datasets.md, 'navsim "
           "environment'): this project + navsim + nuplan-devkit in .venv-navsim")  # fmt: skip
    try:
        navsim = import_module("navsim")
    except ImportError:
        out.append(
            Check(
                "navsim",
                WARN,
                "not installed: our own NAVSIM reader, scorer and training work without it; reading navsim metric "
                "caches (`teachers --source navsim-cache`) and navsim's own scripts do not",
                fix,
            )
        )
    else:
        where = Path(getattr(navsim, "__file__", "") or ".").parent
        versions = f"navsim {_dist_version('navsim') or '?'}, nuplan-devkit {_dist_version('nuplan-devkit') or '?'}"
        try:
            for mod in (
                "nuplan.common.actor_state.ego_state",
                "navsim.planning.metric_caching.metric_cache",
                "navsim.evaluate.pdm_score",
                "navsim.planning.script.run_pdm_score_one_stage",
            ):
                import_module(mod)
        except Exception as e:  # any import failure of navsim's stack is the finding
            out.append(Check("navsim", FAIL, f"{versions} at {where}: `import {mod}` fails: {e}", fix))
        else:
            out.append(Check("navsim", OK, f"{versions} at {where}; metric caches, pdm_score and run_pdm_score import"))
    for var in ("OPENSCENE_DATA_ROOT", "NUPLAN_MAPS_ROOT"):
        val = os.environ.get(var)
        if not val:
            out.append(Check(var, WARN, "not set", f"`export {var}=...` (NAVSIM's data layout) to train on NAVSIM"))
        elif not Path(val).is_dir():
            out.append(Check(var, FAIL, f"{val} is not a directory", f"point {var} at an existing folder"))
        else:
            out.append(Check(var, OK, val))
    return out


def check_video() -> list[Check]:
    out = []
    try:
        av = import_module("av")
        codecs: set[str] = set(getattr(av, "codecs_available", set()))
        h264 = "h264" in codecs
        out.append(
            Check(
                "video (PyAV)",
                OK if h264 else WARN,
                f"av {av.__version__}; h264 {'available' if h264 else 'missing'}",
                "" if h264 else "install a PyAV wheel with h264 (`uv sync --extra video`)",
            )
        )
    except ImportError:
        out.append(
            Check(
                "video (PyAV)",
                WARN,
                "PyAV not installed: video-file pretraining data unavailable",
                "`uv sync --extra video`",
            )
        )
    try:
        cv2 = import_module("cv2")
        fourcc = cv2.VideoWriter_fourcc(*"mp4v")
        out.append(Check("video (OpenCV)", OK, f"cv2 {cv2.__version__}; mp4v fourcc {fourcc}"))
    except ImportError as exc:
        out.append(Check("video (OpenCV)", FAIL, f"not importable ({exc})", "`uv sync`", required=True))
    return out


def iter_checks(carla_root: str | None, b2d_root: str | None) -> Iterator[Check]:
    """The checks one by one, as each finishes (some import heavy packages or start subprocesses)."""
    yield check_python()
    yield from check_torch()
    yield from check_model_stack()
    yield check_carla_client()
    yield check_carla_root(carla_root)
    yield check_bench2drive(b2d_root, carla_root)
    yield from check_navsim()
    yield from check_video()


def run_checks(carla_root: str | None, b2d_root: str | None) -> list[Check]:
    return list(iter_checks(carla_root, b2d_root))


_MARK = {OK: "[ok]  ", WARN: "[warn]", FAIL: "[FAIL]"}
_NAME_WIDTH = 22  # the check names' column when lines are printed one by one


def format_checks(checks: list[Check], width: int = 0) -> str:
    width = width or max(len(c.name) for c in checks)
    lines = []
    for c in checks:
        lines.append(f"{_MARK[c.status]} {c.name.ljust(width)}  {c.detail}")
        if c.fix and c.status != OK:
            lines.append(f"       {' ' * width}  fix: {c.fix}")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="drive-jepa doctor", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--carla-root", default=os.environ.get("CARLA_ROOT"), help="CARLA 0.9.15 folder [$CARLA_ROOT]")
    parser.add_argument(
        "--bench2drive-root",
        default=os.environ.get("BENCH2DRIVE_ROOT"),
        help="Bench2Drive checkout [$BENCH2DRIVE_ROOT]",
    )
    parser.add_argument("--json", action="store_true", help="print the checks as JSON")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any warning too")
    ns = parser.parse_args(argv)
    checks: list[Check] = []
    for check in iter_checks(ns.carla_root, ns.bench2drive_root):
        checks.append(check)
        if not ns.json:  # each line as soon as its check is done (torch and the leaderboard take seconds)
            print(format_checks([check], width=_NAME_WIDTH), flush=True)
    if ns.json:
        print(json.dumps([asdict(c) for c in checks], indent=2))
    failed = [c for c in checks if c.status == FAIL and (c.required or ns.strict)]
    warned = [c for c in checks if c.status != OK]
    if not ns.json:
        summary = "core setup OK" if not [c for c in checks if c.status == FAIL and c.required] else "core setup BROKEN"
        print(f"\n{summary}; {len(warned)} item(s) need attention for the full workflow")
    if failed or (ns.strict and warned):
        return 1
    return 0
