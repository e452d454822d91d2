# enginy-crm-adapter: the service image.
#
#   docker build -t enginy-crm-adapter .
#   docker run -p 8080:8080 \
#     -e ENGINY_ADAPTER_API_KEY=change-me -e ENGINY_ADAPTER_UI_PASSWORD=change-me-too \
#     -v enginy-data:/data \
#     -v "$PWD/config.yaml:/etc/enginy-adapter/config.yaml:ro" \
#     enginy-crm-adapter
#
# Data: the working directory is /data, a declared volume. The embedded default backend (an
# SQLite file, ./enginy-adapter.db) lives there, so mount a named volume or a host directory
# owned by uid 10001 on /data, or the data goes with the container.
#
# Configuration: the YAML file mounted at /etc/enginy-adapter/config.yaml (see
# config.example.yaml; the image ships an empty one, i.e. every default) plus environment
# variables: ENGINY_ADAPTER_API_KEY, ENGINY_ADAPTER_UI_PASSWORD, and any ${VAR} the YAML
# references (database passwords, HubSpot token...). Keep secrets in the environment.
#
# HEALTHCHECK: `enginy-adapter healthcheck` reads that same configuration and environment, so
# it calls /health on the configured port, root path and scheme (server.tls) with a configured
# key. Without a configured key (the service then generates one at start-up, known only to
# that process) the container reports unhealthy: set ENGINY_ADAPTER_API_KEY.
#
# Layers: the locked dependencies are installed before any source file is copied, so a code
# change rebuilds only the last layers; requirements/runtime.txt pins every package by hash.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged user owning /data, the working directory and volume.
RUN groupadd --system --gid 10001 enginy \
    && useradd --system --uid 10001 --gid enginy --no-create-home \
        --home-dir /data --shell /usr/sbin/nologin enginy \
    && mkdir -p /etc/enginy-adapter /data \
    && chown enginy:enginy /data \
    && printf '# Mount your configuration over this file; see config.example.yaml.\n' \
        > /etc/enginy-adapter/config.yaml

# 1. The dependencies, exactly as locked (hashes checked): this layer changes only with the
#    lock file.
COPY requirements/runtime.txt /tmp/requirements.txt
RUN pip install --require-hashes --no-deps -r /tmp/requirements.txt && rm /tmp/requirements.txt

# 2. The service itself, without touching the dependencies installed above.
COPY pyproject.toml README.md /tmp/src/
COPY adapter /tmp/src/adapter
COPY backends /tmp/src/backends
RUN pip install --no-deps /tmp/src && rm -rf /tmp/src

# Not ENGINY_ADAPTER_PORT: it would silently override server.port from the mounted file.
ENV ENGINY_ADAPTER_CONFIG=/etc/enginy-adapter/config.yaml

USER 10001:10001
WORKDIR /data
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD ["enginy-adapter", "healthcheck", "--timeout", "5"]

ENTRYPOINT ["enginy-adapter"]
CMD ["serve", "--host", "0.0.0.0"]
