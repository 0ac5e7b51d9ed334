# TEST DOUBLE of docker.io/minio/minio (onmetal.faas tests only): an S3-compatible object store on :9000 made of
# moto's S3 backend from PyPI (tests/doubles/s3/requirements.txt: moto[s3] 5.1.18 and its web server, pinned), in
# memory, behind tests/doubles/s3/minio_double.py, which takes MinIO's command line (server /data ...) and
# credentials (MINIO_ROOT_USER[_FILE], MINIO_ROOT_PASSWORD[_FILE]) and checks every request's SigV4 signature.
# Build context (made by build.sh): s3/ and wheels/ (the requirements downloaded on the host, installed offline).
ARG BASE
FROM ${BASE} AS venv
RUN apt-get update -qq \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python3-venv >/dev/null
COPY wheels /tmp/wheels
COPY s3/requirements.txt /tmp/requirements.txt
RUN python3 -m venv /opt/s3 \
 && /opt/s3/bin/pip install --no-cache-dir -q --disable-pip-version-check --no-index --find-links /tmp/wheels \
      -r /tmp/requirements.txt \
 && /opt/s3/bin/python -c 'import moto.moto_server.werkzeug_app'

FROM ${BASE}
COPY --from=venv /opt/s3 /opt/s3
COPY s3/minio_double.py /opt/s3/minio_double.py
LABEL org.opencontainers.image.description="TEST DOUBLE of docker.io/minio/minio for onmetal.faas tests" \
      onmetal.test-double-of="docker.io/minio/minio"
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
USER nobody
EXPOSE 9000
ENTRYPOINT ["/opt/s3/bin/python", "/opt/s3/minio_double.py"]
CMD ["server", "/data"]
