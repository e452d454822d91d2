# enginy-crm-adapter: the service image.
#
#   docker build -t enginy-crm-adapter .
#   docker run -p 8080:8080 \
#     -e ENGINY_ADAPTER_API_KEY=change-me \
#     -v "$PWD/config.yaml:/etc/enginy-adapter/config.yaml:ro" \
#     enginy-crm-adapter
#
# Configuration: the YAML file mounted at /etc/enginy-adapter/config.yaml (see
# config.example.yaml; the image ships an empty one, i.e. every default) plus environment
# variables: ENGINY_ADAPTER_API_KEY, ENGINY_ADAPTER_PORT, and any ${VAR} the YAML references
# (database passwords, HubSpot token...). Keep secrets in the environment, not in the file.
#
# The HEALTHCHECK calls GET /health, which requires the API key: it sends
# $ENGINY_ADAPTER_API_KEY in the header named by $ENGINY_HEALTHCHECK_HEADER (default X-API-Key)
# to port $ENGINY_ADAPTER_PORT (default 8080) under $ENGINY_HEALTHCHECK_ROOT_PATH (default: none,
# set it to server.root_path when you use one). Without ENGINY_ADAPTER_API_KEY the service
# generates a key at start-up and the container reports unhealthy: set the key.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# A fixed, unprivileged user; its home is the working directory, where the embedded default
# store (an SQLite file) is written. Mount a volume there to keep that data.
RUN groupadd --system --gid 10001 enginy \
    && useradd --system --uid 10001 --gid enginy --create-home \
        --home-dir /var/lib/enginy-adapter --shell /usr/sbin/nologin enginy \
    && mkdir -p /etc/enginy-adapter \
    && printf '# Mount your configuration over this file; see config.example.yaml.\n' \
        > /etc/enginy-adapter/config.yaml

# Only what the package needs (see .dockerignore); installed, then the sources are removed.
COPY pyproject.toml README.md /tmp/src/
COPY adapter /tmp/src/adapter
COPY backends /tmp/src/backends
RUN pip install "/tmp/src[postgresql,mysql]" && rm -rf /tmp/src

# Not ENGINY_ADAPTER_PORT: it would silently override server.port from the mounted file.
ENV ENGINY_ADAPTER_CONFIG=/etc/enginy-adapter/config.yaml

USER enginy:enginy
WORKDIR /var/lib/enginy-adapter
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request as u; e = os.environ.get; r = u.Request('http://127.0.0.1:%s%s/health' % (e('ENGINY_ADAPTER_PORT') or '8080', e('ENGINY_HEALTHCHECK_ROOT_PATH', '')), headers={e('ENGINY_HEALTHCHECK_HEADER') or 'X-API-Key': e('ENGINY_ADAPTER_API_KEY', '')}); sys.exit(0 if u.urlopen(r, timeout=4).status == 200 else 1)"]

ENTRYPOINT ["enginy-adapter"]
CMD ["serve", "--host", "0.0.0.0"]
