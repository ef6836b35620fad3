# signaldesk: the bot as a container, on the embedded replay data. This build's only chat is the
# console (no Discord or Telegram transport), so chat with it interactively:
#   docker build -t signaldesk .
#   docker run --rm -it -v signaldesk-data:/data signaldesk run
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLBACKEND=Agg \
    BOT__STORAGE__DB_PATH=/data/signaldesk.db

RUN useradd --create-home --uid 10001 bot && mkdir -p /data /app && chown bot:bot /data

WORKDIR /app
COPY pyproject.toml README.md LICENSE config.yaml ./
COPY intel ./intel
COPY bot ./bot
RUN pip install --no-compile .

USER bot
VOLUME ["/data"]
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run", "--no-console"]
