# Evaluation image: Python 3.11, the CARLA 0.9.15 client, Bench2Drive's leaderboard + scenario_runner at a pinned
# commit (fetched at build time), and this package with its `drive-jepa eval` harness.
#
#   docker build -f docker/eval.Dockerfile -t drive-jepa/eval .        (from the repository root)
#
# CARLA's PythonAPI `agents` package (needed by scenario_runner) is copied from the server image, so
# CARLA_ROOT=/opt/carla here holds only PythonAPI/.
ARG CARLA_IMAGE=carlasim/carla:0.9.15
FROM ${CARLA_IMAGE} AS carla

FROM python:3.11.10-slim-bookworm

# Bench2Drive "Release Bench2Drive 0.0.4"; the same commit the fixtures' oracle numbers come from.
ARG BENCH2DRIVE_COMMIT=7ec25d1c9f7522d923ce5f3420986cef1cb2d956
ARG UV_VERSION=0.5.31

SHELL ["/bin/bash", "-o", "pipefail", "-c"]
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates=* curl=* libgomp1=* libjpeg62-turbo=* libpng16-16=* libtiff6=* \
    && rm -rf /var/lib/apt/lists/*

ENV BENCH2DRIVE_ROOT=/opt/Bench2Drive \
    CARLA_ROOT=/opt/carla \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/drive-jepa/.venv/bin:${PATH}

WORKDIR /opt/Bench2Drive
RUN curl -fsSL --retry 3 "https://github.com/Thinklab-SJTU/Bench2Drive/archive/${BENCH2DRIVE_COMMIT}.tar.gz" \
    | tar -xz --strip-components=1 \
        "Bench2Drive-${BENCH2DRIVE_COMMIT}/leaderboard" \
        "Bench2Drive-${BENCH2DRIVE_COMMIT}/scenario_runner" \
        "Bench2Drive-${BENCH2DRIVE_COMMIT}/tools"

COPY --from=carla /home/carla/PythonAPI/carla/agents /opt/carla/PythonAPI/carla/agents

RUN pip install --no-cache-dir "uv==${UV_VERSION}"
WORKDIR /opt/drive-jepa
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --extra carla --no-install-project
COPY drive_jepa drive_jepa
COPY agent agent
COPY training training
COPY bench2drive bench2drive
COPY carla_tools carla_tools
# setuptools < 81 keeps `pkg_resources`, which leaderboard_evaluator.py imports.
RUN uv sync --frozen --no-dev --extra carla \
    && uv pip install --no-cache "setuptools<81"

WORKDIR /opt/Bench2Drive
ENTRYPOINT ["drive-jepa"]
CMD ["eval", "--help"]
