# banana-monitor: the daemon in a container (README "Deployment: Docker and compose").
#   docker build -t banana-monitor .
#   docker run -v "$PWD/feed:/data/feed" banana-monitor run --polling
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY monitor ./monitor
COPY plugins ./plugins
COPY models ./models
# the package (with the redis extra for `run --source redis://...`), then a non-root user
RUN pip install ".[redis]" \
    && useradd --create-home --uid 10001 --user-group monitor \
    && mkdir -p /data/feed /data/state /data/models \
    && cp models/*.npz /data/models/ \
    && chown -R monitor:monitor /data \
    && rm -rf /src

USER monitor
# compile the one-post learning kernels (numba) now, not on the first labelled post:
# the machine code is cached under the monitor user's ~/.cache/numba
RUN python -c "from monitor.model import Model, default_model_path; \
Model.load(default_model_path()).network.warm_kernels()"
WORKDIR /data
# the embedded default, relocated under /data: feed/, its state, the shipped models
ENV BANANA_MONITOR_FEED=/data/feed \
    BANANA_MONITOR_STATE=/data/state
VOLUME ["/data/feed", "/data/state"]

# healthy = `banana-monitor status` reads the state dir and the daemon is running
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
    CMD banana-monitor status | python -c "import json, sys; sys.exit(0 if json.load(sys.stdin)['running'] else 1)"

ENTRYPOINT ["banana-monitor"]
CMD ["run"]
