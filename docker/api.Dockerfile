# kgedit API image: CPU torch, the package installed in place (migrations ship with it).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    KGEDIT_VAR_DIR=/var/lib/kgedit

WORKDIR /app
# torch first and pinned to the CPU build, so nothing else pulls a CUDA build into the API
RUN pip install "torch==2.13.*" --index-url https://download.pytorch.org/whl/cpu
COPY pyproject.toml README.md alembic.ini ./
COPY api ./api
COPY contracts ./contracts
COPY editor ./editor
COPY kg ./kg
COPY workers ./workers
COPY migrations ./migrations
RUN pip install -e ".[postgres]" \
    && useradd --create-home --uid 1000 kgedit \
    && mkdir -p /var/lib/kgedit \
    && chown kgedit /var/lib/kgedit
USER kgedit
EXPOSE 8000
# Inside the container the API listens on all interfaces; compose publishes it on loopback.
CMD ["kgedit", "serve", "--host", "0.0.0.0", "--port", "8000"]
