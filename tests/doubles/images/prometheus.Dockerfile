# REAL Prometheus from Debian's "prometheus" package, laid out like the upstream prom/prometheus image:
# config at /etc/prometheus/prometheus.yml, data in /prometheus, user nobody, port 9090, and the
# upstream image's default flags (override them with the service's command, as with upstream).
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown nobody:nogroup /prometheus \
 && ln -s /etc/prometheus/console_libraries /etc/prometheus/consoles /usr/share/prometheus/
EXPOSE 9090
VOLUME ["/prometheus"]
USER nobody
WORKDIR /prometheus
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus", "--web.console.libraries=/usr/share/prometheus/console_libraries", "--web.console.templates=/usr/share/prometheus/consoles"]
