# REAL Docker registry (distribution 2.8) from Debian's "docker-registry" package: HTTP API v2 on :5000,
# storage under /var/lib/docker-registry, config /etc/docker/registry/config.yml. Debian's sample config enables
# htpasswd auth with no password file; the test registry serves without auth (like upstream registry:2's
# default config), so that config is replaced; mount another one there to change it.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-registry >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /var/lib/docker-registry \
 && printf '%s\n' 'version: 0.1' 'log: {fields: {service: registry}}' \
      'storage: {cache: {blobdescriptor: inmemory}, filesystem: {rootdirectory: /var/lib/docker-registry}, delete: {enabled: true}}' \
      'http: {addr: ":5000", headers: {X-Content-Type-Options: [nosniff]}}' \
      'health: {storagedriver: {enabled: true, interval: 10s, threshold: 3}}' >/etc/docker/registry/config.yml
EXPOSE 5000
VOLUME ["/var/lib/docker-registry"]
ENTRYPOINT ["/usr/bin/docker-registry", "serve"]
CMD ["/etc/docker/registry/config.yml"]
