# callconsent app image. Build from the repository root:
#   docker build -f docker/Dockerfile.app -t callconsent-app .
FROM python:3.12-slim

# espeak-ng and sox render the spoken notices (prompts) the app hands to Asterisk.
RUN apt-get update \
 && apt-get install -y --no-install-recommends espeak-ng sox \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/callconsent
COPY pyproject.toml ./
COPY README.md* ./
COPY src ./src
RUN pip install --no-cache-dir .

# Recordings, sidecars, prompts and the ledger live under /var/lib/callconsent, shared with the
# Asterisk container at the same path (see compose.yaml). The group matches the asterisk group
# of Dockerfile.asterisk so both sides can write the recordings folders.
RUN groupadd --system --gid 101 asterisk \
 && useradd --system --uid 1001 --gid asterisk --no-create-home callconsent \
 && mkdir -p /var/lib/callconsent /etc/callconsent \
 && chown callconsent:asterisk /var/lib/callconsent
USER callconsent

CMD ["callconsent", "serve", "--config", "/etc/callconsent/callconsent.yaml"]
