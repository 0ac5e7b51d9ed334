# REAL Alertmanager from Debian's "prometheus-alertmanager" package, laid out like the upstream
# prom/alertmanager image: config at /etc/alertmanager/alertmanager.yml (Debian's sample config is the
# default), data in /alertmanager, user nobody, port 9093, and the upstream image's default flags.
ARG BASE
FROM ${BASE}
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus-alertmanager >/dev/null \
 && apt-get clean && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /etc/alertmanager /alertmanager && chown nobody:nogroup /alertmanager \
 && cp /etc/prometheus/alertmanager.yml /etc/alertmanager/alertmanager.yml \
 && ln -sf /usr/bin/prometheus-alertmanager /usr/bin/alertmanager
EXPOSE 9093
VOLUME ["/alertmanager"]
USER nobody
WORKDIR /alertmanager
ENTRYPOINT ["/usr/bin/prometheus-alertmanager"]
CMD ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"]
