# syntax=docker/dockerfile:1
# Build stage: durable-rules 2.0.28 ships as an sdist only and compiles C, so the compiler lives here only.
FROM python:3.12-slim-bookworm AS build
# Debian revisions are not pinned: bookworm only ships security fixes, and the mirror drops old revisions.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml constraints.txt README.md ./
COPY service ./service
# Same install as `make run`: the project with its pinned constraints, built into wheels.
RUN pip wheel --no-cache-dir --wheel-dir /wheels -c constraints.txt .

# Runtime stage: no compiler, non-root, only what the service reads at run time.
FROM python:3.12-slim-bookworm
# Production by default: outside loopback the service refuses to start without authentication, issuers, the
# proxy's address and an audit HMAC secret (deploy/compose.yaml and deploy/kubernetes/ provide them). SIGTERM
# drains first: /readyz answers 503 for SHUTDOWN_DRAIN_S while requests are still served.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    LDN_ENV=production \
    HOST=0.0.0.0 \
    PORT=8000 \
    WORKERS=2 \
    SHUTDOWN_DRAIN_S=10
RUN groupadd --system --gid 10001 ldn \
    && useradd --system --uid 10001 --gid 10001 --home-dir /app --shell /usr/sbin/nologin ldn
WORKDIR /app
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels ldn-cds==1.0.0 && rm -rf /wheels
COPY --chown=root:root rules ./rules
COPY --chown=root:root schemas ./schemas
COPY --chown=root:root openapi.yaml ./openapi.yaml
# The embedded SQLite audit store needs a writable folder; production sets DATABASE_URL to PostgreSQL.
RUN mkdir -p /app/var && chown 10001:10001 /app/var
ENV RULES_DIR=/app/rules \
    SCHEMAS_DIR=/app/schemas \
    CONTRACT_PATH=/app/openapi.yaml \
    DATABASE_URL=sqlite:////app/var/audit.db
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=2)"]
# uvicorn's process supervisor restarts a worker that crashes (durable-rules is C) or hangs.
CMD ["python", "-m", "service.serve"]
