# syntax=docker/dockerfile:1
# One image for both roles:
#   docker run IMAGE worker run -f /etc/cirrus/worker.yml
#   docker run IMAGE controller run --listen 0.0.0.0:8080 --database postgresql://...
# tini is PID 1, so SIGTERM reaches cirrus (first SIGTERM drains, see docs/signals.md) and
# zombies of task processes are reaped.
#
# Only `python3` is relied on (not /usr/local/bin/python): the image also builds FROM a Debian
# python3 stand-in of the same name (scripts/build-base-standin.sh) where no registry is reachable.

# --- build: a virtualenv in /opt/venv with the dependencies, then the project ---------------
FROM python:3.11-slim-bookworm AS build

# The CA bundle pip verifies PyPI with; build stage only, never in the final image. Behind a
# TLS-intercepting proxy: --build-arg PIP_CERT=/run/ca.crt --volume /path/to/proxy-ca.crt:/run/ca.crt
ARG PIP_CERT=/etc/ssl/certs/ca-certificates.crt
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python3 -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src

# Dependencies first, exactly the locked set (every package pinned with its hashes; --no-deps
# keeps pip from adding any other): this layer survives changes to the sources.
COPY requirements/runtime.txt requirements/build.txt ./requirements/
RUN pip install --no-deps --require-hashes --requirement requirements/runtime.txt

# The project as a wheel, built by the locked backend (hatchling) in a venv of its own that
# stays in this stage, then installed without dependencies.
COPY pyproject.toml README.md ./
COPY src ./src
RUN python3 -m venv /opt/build \
    && /opt/build/bin/pip install --no-deps --require-hashes --requirement requirements/build.txt \
    && /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /tmp/wheels . \
    && pip install --no-deps /tmp/wheels/*.whl \
    && pip check \
    && cirrus --version

# --- runtime ------------------------------------------------------------------------------
FROM python:3.11-slim-bookworm

# tini as PID 1, then a fixed numeric user with a home for the controller's default SQLite file
# and the worker's task directories. tini is not pinned: bookworm's is the only one there is.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 cirrus \
    && useradd --no-log-init --uid 10001 --gid 10001 --home-dir /var/lib/cirrus --create-home \
        --shell /usr/sbin/nologin cirrus

COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_DATA_HOME=/var/lib/cirrus

USER 10001:10001
WORKDIR /var/lib/cirrus
# The controller's port when started with --listen 0.0.0.0:8080.
EXPOSE 8080
ENTRYPOINT ["tini", "--", "cirrus"]
CMD ["worker", "run"]
