# The council mail gateway with ClamAV beside it, as one container.
#
#   docker build -t council-gateway .
#   docker run -d --name gateway -p 25:2525 -p 587:2587 \
#     -v /srv/gateway/config:/app/config -v /srv/gateway/quarantine:/app/quarantine \
#     -v /srv/gateway/mailbox:/app/mailbox -v /srv/gateway/outbox:/app/outbox \
#     -v /srv/gateway/logs:/app/logs -v gateway-clamav:/var/lib/clamav council-gateway
#
# The mounted config/gateway.toml must listen on 0.0.0.0 (see docs/operations.md, "Container").
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# clamav-daemon (clamd) scans, clamav-freshclam keeps the signatures up to date, tini reaps and
# forwards signals to the gateway, clamd and freshclam.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clamav clamav-daemon clamav-freshclam ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so bind-mounted folders can be given to it on the host (chown 2525:2525).
RUN groupadd --system --gid 2525 gateway \
 && useradd --system --uid 2525 --gid gateway --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin gateway

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY gateway ./gateway
# gateway_ops renders clamd.conf at every start (scripts/docker-entrypoint).
COPY gateway_ops ./gateway_ops
# gateway/data links to these shipped defaults; they must be there when the package is built.
COPY config/gateway.toml config/footer.txt config/footer.html ./config/
# The sources go once installed, so that python -m gateway_ops runs the installed copy.
RUN pip install . && rm -rf /app/gateway /app/gateway_ops /app/build

# clamd.conf is a template: the entrypoint renders it into /run/clamav/clamd.conf, its limits
# following [gateway] max_message_size of the mounted config. freshclam runs as a daemon.
COPY docker/clamd.conf /etc/clamav/clamd-gateway.conf
COPY docker/freshclam.conf /etc/clamav/freshclam-gateway.conf
COPY scripts/docker-entrypoint /usr/local/bin/docker-entrypoint

RUN mkdir -p /app/config /app/quarantine /app/mailbox /app/outbox /app/logs /run/clamav \
 && chown -R gateway:gateway /app /run/clamav /var/lib/clamav \
 && chmod 0755 /usr/local/bin/docker-entrypoint

USER gateway
VOLUME ["/app/config", "/app/quarantine", "/app/mailbox", "/app/outbox", "/app/logs", \
        "/var/lib/clamav"]

# 2525 inbound (MX), 2587 outbound (councillors' submission), 8025 the clerk's review page.
EXPOSE 2525 2587 8025

# Healthy when /health says so: clamd answers, the next hops take a connection, the folders a
# file. The mounted config must have  [metrics] listen = "127.0.0.1:9125"  (or "0.0.0.0:9125").
HEALTHCHECK --interval=60s --timeout=10s --start-period=180s \
  CMD ["python", "-c", "import sys, urllib.error, urllib.request\ntry:\n    r = urllib.request.urlopen('http://127.0.0.1:9125/health', timeout=8)\nexcept urllib.error.HTTPError as e:\n    r = e\nexcept OSError as e:\n    sys.exit(f'no answer from the gateway on 127.0.0.1:9125 ([metrics] listen): {e}')\nprint(r.read().decode(errors='replace'), end='')\nsys.exit(0 if r.status == 200 else 1)"]

ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/docker-entrypoint"]
