# syntax=docker/dockerfile:1
# Coves AppView. Build: docker build -t coves-appview .   Run: docker run -e DATABASE_URL=… coves-appview

FROM python:3.11.11-slim-bookworm AS build
WORKDIR /src
RUN python -m venv /opt/coves
COPY pyproject.toml README.md ./
COPY engine ./engine
COPY api ./api
COPY bench ./bench
COPY sql ./sql
COPY lexicons ./lexicons
RUN /opt/coves/bin/pip install --no-cache-dir .

FROM python:3.11.11-slim-bookworm
RUN useradd --system --create-home --home-dir /var/lib/coves coves
COPY --from=build /opt/coves /opt/coves
# The code reads sql/ and lexicons/ next to its packages.
COPY --from=build /src/sql /opt/coves/lib/python3.11/site-packages/sql
COPY --from=build /src/lexicons /opt/coves/lib/python3.11/site-packages/lexicons
ENV PATH=/opt/coves/bin:$PATH \
    COVES_ENV=production \
    COVES_DATA_DIR=/var/lib/coves/data \
    METRICS_HOST=0.0.0.0
USER coves
WORKDIR /var/lib/coves
EXPOSE 9464
ENTRYPOINT ["coves"]
CMD ["run"]
