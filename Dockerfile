# digitlab's web service: the drawing page, the REST API and /metrics, with the shipped model.
#
#   docker build -t digitlab .
#   docker run --rm -p 8000:8000 digitlab                 # then open http://localhost:8000/
#   docker run --rm -p 8000:8000 -e DIGITLAB_WORKERS=2 -v $PWD/runs:/models:ro \
#       -e DIGITLAB_MODEL=/models/robust/best.pt digitlab
#
# Settings come from the environment (docs/scaling-service.md, `digitlab serve --help`):
# DIGITLAB_MODEL, DIGITLAB_HOST, DIGITLAB_PORT, DIGITLAB_WORKERS, DIGITLAB_MIN_CONFIDENCE,
# DIGITLAB_MAX_UPLOAD_BYTES, DIGITLAB_MAX_IMAGE_REQUESTS, DIGITLAB_REQUEST_TIMEOUT, ...
#
# tests/service/test_container.py runs this image's CMD with its ENV and HEALTHCHECK, as a
# non-root user, from a pip install of the built wheel (base images cannot be pulled there).

ARG PYTHON_VERSION=3.11

# ---- build: the wheel (package code, the shipped model, the page's static files)
FROM python:${PYTHON_VERSION}-slim AS build
WORKDIR /src
RUN pip install --no-cache-dir "build>=1"
COPY pyproject.toml README.md LICENSE ./
COPY src ./src
RUN python -m build --wheel --outdir /dist

# ---- runtime: CPU-only torch (no CUDA libraries: about 1/8 of the size), the wheel with [serve]
FROM python:${PYTHON_VERSION}-slim AS runtime
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN pip install --index-url https://download.pytorch.org/whl/cpu \
        "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}"
COPY --from=build /dist/ /tmp/dist/
RUN pip install "$(ls /tmp/dist/digitlab-*.whl)[serve]" && rm -rf /tmp/dist
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin digitlab
USER digitlab
WORKDIR /home/digitlab
ENV DIGITLAB_HOST=0.0.0.0 \
    DIGITLAB_PORT=8000 \
    DIGITLAB_WORKERS=1
EXPOSE 8000
# /healthz says the process is alive; /readyz that the model is loaded (route traffic on it).
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('DIGITLAB_PORT', '8000'), timeout=2)"]
CMD ["digitlab", "serve"]
