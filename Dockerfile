# imageroute bot image: `docker build -t imageroute .`
# `docker run --env-file .env -v $PWD/data:/app/data imageroute` (Socket Mode), or add
# `serve --http --port 3000` and `-p 3000:3000` for the Events API over HTTP.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 UV_LINK_MODE=copy UV_COMPILE_BYTECODE=1
RUN pip install --no-cache-dir uv==0.13.9 && useradd --create-home --uid 10001 imageroute
WORKDIR /app

# Dependencies first (cached layer), then the project itself.
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY bot bot
COPY routes routes
COPY advisor advisor
COPY storage storage
# The project's own modules compiled now (UV_COMPILE_BYTECODE covers the dependencies only):
# with PYTHONDONTWRITEBYTECODE nothing is cached at run time, so each start would recompile.
RUN uv sync --frozen --no-dev \
    && /app/.venv/bin/python -m compileall -q -j 0 bot routes advisor storage \
    && mkdir -p /app/data && chown imageroute /app/data

USER imageroute
EXPOSE 3000
ENTRYPOINT ["/app/.venv/bin/imageroute"]
CMD ["serve"]
