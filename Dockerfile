FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    RELAY_BIND=0.0.0.0:8080 \
    RELAY_DATABASE_URL=sqlite:////data/relay.db \
    RELAY_MAPPINGS_DIR=/app/mappings

WORKDIR /app
COPY requirements.txt pyproject.toml ./
RUN pip install --no-cache-dir --require-hashes -r requirements.txt
COPY relay ./relay
COPY mappings ./mappings
COPY gunicorn.conf.py ./
RUN pip install --no-cache-dir --no-deps . \
    && useradd --system --uid 10001 --home-dir /app relay \
    && mkdir -p /data && chown relay /data

USER relay
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD python -c "import os,urllib.request; port=os.environ['RELAY_BIND'].rsplit(':',1)[1]; urllib.request.urlopen(f'http://127.0.0.1:{port}/healthz', timeout=2)"
ENTRYPOINT ["relay", "serve"]
