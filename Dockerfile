# Minimal image; the self-hosting issue hardens it and adds compose + Tor.
FROM python:3.11-slim AS build
COPY deploy/requirements.lock /tmp/requirements.lock
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock

FROM python:3.11-slim
RUN useradd --system --home-dir /var/lib/buzon --create-home buzon
COPY --from=build /venv /venv
COPY app /opt/buzon/app
RUN /venv/bin/pybabel -q compile -d /opt/buzon/app/translations -D messages
COPY templates /opt/buzon/templates
COPY static /opt/buzon/static
ENV PATH=/venv/bin:$PATH PYTHONPATH=/opt/buzon BUZON_DATA_DIR=/var/lib/buzon/data
USER buzon
EXPOSE 8080 8081
CMD ["python", "-m", "app", "serve", "--host", "0.0.0.0"]
