# callconsent app image. Build from the repository root:
#   docker build -f docker/Dockerfile.app -t callconsent-app .
# Python 3.11: the version requirements.lock is made for (scripts/lock).
ARG PYTHON_IMAGE=python:3.11-slim-bookworm
FROM ${PYTHON_IMAGE}

# The group shared with the Asterisk image: the same fixed gid in both (compose.yaml passes it),
# so both sides can write the recordings folders of the shared volume.
ARG SHARED_GID=990

# espeak-ng and sox make the spoken notices (callconsent prompts) the app hands to Asterisk.
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/callconsent
# the pinned, hashed dependencies first (a layer that changes only with the lock), then the app
COPY requirements.lock ./
RUN pip install --no-cache-dir --require-hashes -r requirements.lock
COPY pyproject.toml README.md ./
COPY config/callconsent.yaml ./config/callconsent.yaml
COPY dialplan ./dialplan
COPY src ./src
RUN pip install --no-cache-dir --no-deps . && rm -rf src build

# Recordings, sidecars, prompts and the ledger live under /var/lib/callconsent, shared with the
# Asterisk container at the same path (see compose.yaml).
RUN groupadd --system --gid "${SHARED_GID}" callconsent \
 && useradd --system --uid 1001 --gid callconsent --no-create-home --home-dir /var/lib/callconsent callconsent \
 && mkdir -p /var/lib/callconsent /etc/callconsent \
 && chown callconsent:callconsent /var/lib/callconsent \
 && chmod 2770 /var/lib/callconsent
USER callconsent
ENV CALLCONSENT_CONFIG=/etc/callconsent/callconsent.yaml

# /health answers 200 while ARI (and AMI, when configured) are connected (metrics.port, 9467).
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:9467/health', timeout=2); sys.exit(0)"]

# The prompts are made (once; kept on the volume) before the app serves.
CMD ["sh", "-c", "callconsent prompts --config \"$CALLCONSENT_CONFIG\" && exec callconsent serve --config \"$CALLCONSENT_CONFIG\""]
