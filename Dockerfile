# syntax=docker/dockerfile:1
# Coves AppView: `coves run` = firehose engine + XRPC API + metrics in one process.
#   docker build -t coves-appview .
#   docker run -p 8080:8080 -e DATABASE_URL=postgresql://… -e INSTANCE_DID=did:web:… coves-appview
# See ops/compose.yml for the whole stack and ops/RUNBOOK.md for the settings checklist.

# ---- build: install the package and its dependencies into a virtualenv ----
FROM python:3.11.11-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
RUN python -m venv /opt/coves
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY bench ./bench
RUN /opt/coves/bin/pip install .

# ---- runtime: the virtualenv, the SQL and lexicons it reads, a non-root user ----
FROM python:3.11.11-slim-bookworm
RUN useradd --system --uid 10001 --create-home --home-dir /var/lib/coves coves
COPY --from=build /opt/coves /opt/coves
# engine/migrate.py and engine/lexicon.py look for sql/ and lexicons/ next to the packages.
COPY sql /opt/coves/lib/python3.11/site-packages/sql
COPY lexicons /opt/coves/lib/python3.11/site-packages/lexicons
ENV PATH=/opt/coves/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    COVES_ENV=production \
    COVES_DATA_DIR=/var/lib/coves/data \
    API_HOST=0.0.0.0 \
    API_PORT=8080
USER 10001
WORKDIR /var/lib/coves
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/xrpc/_health', timeout=4).status == 200 else 1)"]
ENTRYPOINT ["coves"]
CMD ["run"]
