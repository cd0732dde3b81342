# kgedit GPU worker image: CUDA torch wheels (they bring the CUDA runtime; the host brings
# the driver through the NVIDIA container toolkit), one Celery worker per container.
FROM python:3.11-slim

ARG TORCH_INDEX=https://download.pytorch.org/whl/cu126
ENV PIP_NO_CACHE_DIR=1 \
    PYTHONUNBUFFERED=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    KGEDIT_VAR_DIR=/var/lib/kgedit \
    KGEDIT_DEVICE=cuda

WORKDIR /app
RUN pip install "torch==2.13.*" --index-url "${TORCH_INDEX}"
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
# Serves every registered model's queue, one job at a time; restart it after registering
# a new model, or run one container per model with `--model NAME`.
CMD ["kgedit", "worker", "--loglevel", "info"]
