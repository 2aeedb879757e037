#!/usr/bin/env bash
# Build the navsim developer environment: this project (locked, with its dev group) plus navsim and nuplan-devkit
# installed from their sources, in a separate virtual environment (default .venv-navsim). In it the tests marked
# `navsim` run instead of skipping.
#
# usage: tools/navsim_env.sh NAVSIM_SRC NUPLAN_SRC [VENV]
#   NAVSIM_SRC  a checkout of github.com/autonomousvision/navsim (tested: main @ 0a380a9 = v2.2), or a bare git dir
#   NUPLAN_SRC  a checkout of github.com/motional/nuplan-devkit (tag nuplan-devkit-v1.2), or a bare git dir
#   VENV        where to build it (default: .venv-navsim in the repository root)
#
# then:  .venv-navsim/bin/pytest -m navsim          (and `.venv-navsim/bin/drive-jepa doctor` reports navsim)
#
# navsim and nuplan-devkit pin old stacks (numpy<2, shapely 2.0, pandas 2.0 …) that do not install on Python 3.11
# with this project's lock. Their scoring, metric-cache, scene-loading and agent code runs on the lock's stack, so
# both are installed WITHOUT their declared dependencies, plus the few packages they import on those paths.
set -euo pipefail
usage="usage: tools/navsim_env.sh NAVSIM_SRC NUPLAN_SRC [VENV]"
NAVSIM_SRC=${1:?$usage}
NUPLAN_SRC=${2:?$usage}
cd "$(dirname "$0")/.."
VENV=${3:-$PWD/.venv-navsim}
command -v uv >/dev/null || { echo "navsim_env: needs uv (python3 -m pip install uv)" >&2; exit 2; }

# A bare git dir (no work tree) is exported to VENV-src/<name>; a checkout is used where it is. Both are installed
# editable, as navsim's own instructions do: its scripts read their Hydra configs (YAML) from the source tree.
tmp="$VENV-src"
mkdir -p "$tmp"
source_tree() { # SRC REF NAME -> prints a directory holding the sources
  local src=$1 ref=$2 name=$3
  if [ -f "$src/pyproject.toml" ] || [ -f "$src/setup.py" ]; then
    echo "$src"
    return
  fi
  if ! git --git-dir="$src" rev-parse -q --verify "$ref^{commit}" >/dev/null 2>&1; then
    echo "navsim_env: $src is neither a source checkout (setup.py / pyproject.toml) nor a git dir with $ref" >&2
    exit 2
  fi
  rm -rf "${tmp:?}/$name"
  mkdir -p "$tmp/$name"
  if ! git --git-dir="$src" archive "$ref" 2>/dev/null | tar -x -C "$tmp/$name" 2>/dev/null; then
    # partial mirrors may lack large binary blobs (docs, images): export blob by blob and skip the missing ones
    git --git-dir="$src" ls-tree -r "$ref" | while IFS=$'\t' read -r meta path; do
      read -r _mode kind sha <<<"$meta"
      [ "$kind" = blob ] || continue
      mkdir -p "$tmp/$name/$(dirname "$path")"
      git --git-dir="$src" cat-file blob "$sha" >"$tmp/$name/$path" 2>/dev/null || rm -f "$tmp/$name/$path"
    done
  fi
  echo "$tmp/$name"
}

navsim_tree=$(source_tree "$NAVSIM_SRC" HEAD navsim)
nuplan_tree=$(source_tree "$NUPLAN_SRC" nuplan-devkit-v1.2 nuplan-devkit)
[ -d "$navsim_tree/navsim" ] || { echo "navsim_env: no navsim/ package in $NAVSIM_SRC" >&2; exit 2; }
[ -d "$nuplan_tree/nuplan" ] || { echo "navsim_env: no nuplan/ package in $NUPLAN_SRC" >&2; exit 2; }

echo "navsim_env: project environment (uv.lock) -> $VENV"
UV_PROJECT_ENVIRONMENT="$VENV" uv sync --locked --quiet --inexact
# what navsim / nuplan-devkit import on the scoring, metric-cache, scene-loader and agent paths beyond the lock
uv pip install --quiet --python "$VENV/bin/python" "pandas>=2.2" "geopandas>=1.0" "pyquaternion>=0.9.9" \
  "rasterio>=1.4" "aioboto3" "retry>=0.9.2" "matplotlib>=3.8" "pillow>=10" "requests" "pytorch-lightning>=2.2"
echo "navsim_env: navsim and nuplan-devkit (no dependencies)"
uv pip install --quiet --python "$VENV/bin/python" --no-deps -e "$nuplan_tree" -e "$navsim_tree"
"$VENV/bin/python" - <<'EOF'
from importlib.metadata import version

import navsim.evaluate.pdm_score  # noqa: F401  (the scoring path imports)
import navsim.planning.script.run_pdm_score_one_stage  # noqa: F401  (the evaluation script)

print(f"navsim_env: ready (navsim {version('navsim')}, nuplan-devkit {version('nuplan-devkit')})")
EOF
