# Buzón's image: the source interface and the editor portal, for
# deploy/compose.yaml (docs/deploy.md). Two stages: the first installs the
# pinned dependencies and compiles the bytecode; the second gets only the
# results, with no compiler, no pip cache and no root process.

FROM python:3.11-slim-bookworm AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
COPY deploy/requirements.lock /tmp/requirements.lock
# Every wheel is checked against the lock's SHA-256 hashes.
RUN python -m venv /venv \
 && /venv/bin/pip install --require-hashes -r /tmp/requirements.lock
COPY app /opt/buzon/app
COPY deploy/docker/healthcheck.py /opt/buzon/healthcheck.py
# The root filesystem is read-only at run time, so bytecode is compiled here.
# (Translations need no build: app/web/i18n.py compiles the .po files in memory.)
RUN /venv/bin/python -m compileall -q /opt/buzon \
 && printf '#!/bin/sh\nexec /venv/bin/python -m app "$@"\n' > /venv/bin/buzon \
 && chmod 0755 /venv/bin/buzon

FROM python:3.11-slim-bookworm
RUN useradd --system --user-group --home-dir /var/lib/buzon --shell /usr/sbin/nologin buzon \
 && install -d -o buzon -g buzon -m 0700 /var/lib/buzon /var/lib/buzon/data
COPY --from=build /venv /venv
COPY --from=build /opt/buzon /opt/buzon
ENV PATH=/venv/bin:$PATH \
    PYTHONPATH=/opt/buzon \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BUZON_DATA_DIR=/var/lib/buzon/data
USER buzon
WORKDIR /var/lib/buzon
# No EXPOSE: nothing is meant to be published. Tor reaches ports 8080 (source)
# and 8081 (editors) over the compose file's internal network.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "/opt/buzon/healthcheck.py"]
ENTRYPOINT ["buzon"]
# 0.0.0.0 is the container's own interface on the internal network, never a host port.
CMD ["serve", "--host", "0.0.0.0"]
