# One image for every FinanceLake role, selected by its command:
#   financelake serve ingestion|marketdata|stream|prediction   a gRPC server
#   financelake stream worker                                  the Faust stream worker
#   financelake models train                                   a training run (the CronJob)
#   financelake gateway render --target cluster ...            Envoy's config, the UI inlined
# Built in three stages; the final one has the virtualenv, the built UI and the generated
# descriptor set and OpenAPI document, no compiler, no package manager cache, and runs as a
# non-root user with nothing to write outside /tmp (FINANCELAKE_HOME).

FROM node:20.20.2-bookworm-slim AS ui
WORKDIR /src
COPY package.json package-lock.json ./
COPY services/web/package.json services/web/
RUN npm ci --no-audit --no-fund --loglevel=error
COPY gen/ts gen/ts
COPY services/web services/web
RUN npm --workspace services/web run build

FROM python:3.11.7-slim-bookworm AS python
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
# A C compiler for the stream's TickBatch reader (stream/_tick_wire.c); this stage only.
# Unpinned: libc6-dev must match the libc6 of the day's security updates, and bookworm's
# mirrors keep only the newest; the tagged base image pins the rest.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/financelake
# The runtime lock only: no test or lint tools in the image.
COPY requirements.runtime.lock ./
RUN /opt/financelake/bin/pip install --no-deps -r requirements.runtime.lock
COPY pyproject.toml setup.py ./
COPY services services
COPY stream stream
COPY models models
COPY gateway gateway
COPY observability observability
COPY gen/python gen/python
COPY gen/client gen/client
RUN /opt/financelake/bin/pip install --no-deps . \
    && rm -rf /opt/financelake/lib/python3.11/site-packages/financelake/services/web

FROM python:3.11.7-slim-bookworm
RUN useradd --uid 10001 --user-group --no-create-home --shell /usr/sbin/nologin financelake
COPY --from=python /opt/financelake /opt/financelake
COPY --from=ui /src/services/web/dist /opt/financelake/share/ui
COPY gen/descriptor /opt/financelake/share/descriptor
COPY gen/openapi /opt/financelake/share/openapi
ENV PATH=/opt/financelake/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    FINANCELAKE_HOME=/tmp/financelake \
    FINANCELAKE_CACHE_DIR=/tmp/financelake-cache \
    FINANCELAKE_GATEWAY__UI_PATH=/opt/financelake/share/ui \
    FINANCELAKE_GATEWAY__DESCRIPTOR_PATH=/opt/financelake/share/descriptor/financelake.binpb \
    FINANCELAKE_GATEWAY__OPENAPI_PATH=/opt/financelake/share/openapi/financelake.openapi.json
USER 10001:10001
WORKDIR /tmp
ENTRYPOINT ["financelake"]
CMD ["--help"]
