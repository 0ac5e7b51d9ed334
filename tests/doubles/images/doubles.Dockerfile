# Test-double image (onmetal.faas tests only): the shared rootfs of the OpenFaaS test doubles
# (gateway, basic-auth-plugin, faas-swarm, queue-worker, nats-streaming), which stand in for the upstream
# OpenFaaS images that cannot be pulled on the test rig. Debian packages only; build.sh adds one CMD per double.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-docker >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/*
COPY openfaas/ /opt/onmetal-doubles/
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/onmetal-doubles
