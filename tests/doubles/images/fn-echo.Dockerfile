# Test function image (onmetal.faas tests only): the upper-casing echo function on :8080 (functions/fn_echo.py).
ARG BASE
FROM ${BASE}
COPY functions/fn_echo.py /opt/fn/fn_echo.py
ENV PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1
EXPOSE 8080
USER nobody
# No HEALTHCHECK, like the project's template (its Dockerfile says why): the process listens before it loads.
CMD ["python3", "/opt/fn/fn_echo.py"]
