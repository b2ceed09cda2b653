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

# clamav-daemon (clamd) scans, clamav-freshclam fetches signatures, tini reaps and forwards
# signals to both processes.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      clamav clamav-daemon clamav-freshclam ca-certificates tini \
 && rm -rf /var/lib/apt/lists/*

# A fixed uid/gid so bind-mounted folders can be given to it on the host (chown 2525:2525).
RUN groupadd --system --gid 2525 gateway \
 && useradd --system --uid 2525 --gid gateway --home-dir /app --no-create-home \
      --shell /usr/sbin/nologin gateway

WORKDIR /app
COPY pyproject.toml README.md ./
COPY gateway ./gateway
# gateway/data links to these shipped defaults; they must be there when the package is built.
COPY config/gateway.toml config/footer.txt config/footer.html ./config/
RUN pip install . && rm -rf /app/gateway /app/build

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

HEALTHCHECK --interval=60s --timeout=10s --start-period=180s \
  CMD python -c "import socket; socket.create_connection(('127.0.0.1', 2525), 5).close()"

ENTRYPOINT ["/usr/bin/tini", "-g", "--", "/usr/local/bin/docker-entrypoint"]
