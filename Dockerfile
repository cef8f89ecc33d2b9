# syntax=docker/dockerfile:1
# One image for every Vigil process: `vigil serve`, `vigil worker`, `vigil migrate`, `vigil-agent`
# (the command is the container's arguments; the default is `vigil --help`).
#
#   docker build -t vigil:0.1.0 .
#   docker run --rm vigil:0.1.0 vigil --help
#
# Stage 1 builds the virtualenv (a compiler is there for any dependency without a wheel);
# stage 2 is the slim runtime: the venv, no compiler, no pip cache, a non-root user.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/vigil
WORKDIR /src
# Dependencies first (cached while only the code changes), then the package itself.
COPY pyproject.toml README.md ./
RUN mkdir -p control_plane probe_agent shared \
    && touch control_plane/__init__.py probe_agent/__init__.py shared/__init__.py \
    && /opt/vigil/bin/pip install . \
    && /opt/vigil/bin/pip uninstall -y vigil
COPY control_plane ./control_plane
COPY probe_agent ./probe_agent
COPY shared ./shared
RUN /opt/vigil/bin/pip install --no-deps . \
    && /opt/vigil/bin/python -m compileall -q /opt/vigil/lib

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="vigil" \
      org.opencontainers.image.description="Vigil uptime monitoring: control plane, worker, probe agent" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/vigil/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIGIL_HOST=0.0.0.0 \
    VIGIL_PORT=8000 \
    VIGIL_WORKER_METRICS_HOST=0.0.0.0 \
    VIGIL_AGENT_METRICS_HOST=0.0.0.0 \
    VIGIL_AGENT_SPOOL_DIR=/var/lib/vigil-agent/spool
RUN groupadd --system --gid 10001 vigil \
    && useradd --system --uid 10001 --gid vigil --home-dir /var/lib/vigil-agent \
       --create-home --shell /usr/sbin/nologin vigil
COPY --from=build /opt/vigil /opt/vigil
COPY deploy/docker/healthcheck.py /usr/local/bin/vigil-healthcheck
USER 10001:10001
WORKDIR /var/lib/vigil-agent
EXPOSE 8000 9464
# Knows which process it is in (PID 1's command line): the API answers /healthz, the worker and
# the agent their metrics endpoint when one is configured; a one-shot `vigil migrate` is healthy.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "/usr/local/bin/vigil-healthcheck"]
CMD ["vigil", "--help"]
