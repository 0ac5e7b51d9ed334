# Test function image (onmetal.faas tests only): the upper-casing echo function on :8080 (functions/fn_echo.py).
ARG BASE
FROM ${BASE}
COPY functions/fn_echo.py /opt/fn/fn_echo.py
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
USER nobody
HEALTHCHECK --interval=3s --timeout=2s --retries=3 CMD ["python3", "-c", "import urllib.request as u; u.urlopen('http://127.0.0.1:8080/_/health', timeout=1)"]
CMD ["python3", "/opt/fn/fn_echo.py"]
