# signaldesk: the bot as a container, on the embedded replay data (README, "Docker"):
#   docker build -t signaldesk .
#   docker run -it --rm -v signaldesk-data:/data signaldesk run     # the console chat
#   docker run --rm signaldesk signal btc                           # one signal, then exit
#   docker run -d --name signaldesk -v signaldesk-data:/data signaldesk   # the bot, no chat
# Chat platforms: -e DISCORD_TOKEN and/or -e TELEGRAM_TOKEN (README: Discord, Telegram).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    MPLBACKEND=Agg \
    BOT__STORAGE__DB_PATH=/data/signaldesk.db \
    BOT__CONSOLE__CHART_DIR=/data/charts

RUN useradd --create-home --uid 10001 bot && mkdir -p /data /app && chown bot:bot /data

WORKDIR /app
COPY pyproject.toml README.md LICENSE config.yaml ./
COPY intel ./intel
COPY bot ./bot
RUN pip install --no-compile .

USER 10001
VOLUME ["/data"]
# Healthy while the bot holds its database and its recorded last cycle is recent (at most two
# schedule intervals and a minute old). `status --health` exits 3 otherwise (the contract's
# "required data unavailable"); Docker's documented code for unhealthy is 1.
HEALTHCHECK --interval=60s --timeout=30s --start-period=120s --retries=3 \
    CMD ["sh", "-c", "python -m bot status --health || exit 1"]
ENTRYPOINT ["python", "-m", "bot"]
CMD ["run", "--no-console"]
