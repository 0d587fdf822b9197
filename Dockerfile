# The kbmanager image: web server, workers, reconciler and migrations all run from it
# (compose.yaml picks the command). Build: docker build -t kbmanager .
FROM python:3.13-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DJANGO_SETTINGS_MODULE=kbmanager.settings

WORKDIR /app

# Requirements first, so a code change does not reinstall them. Every dependency ships
# a wheel for this platform (psycopg[binary], lxml), so no compiler is needed.
COPY requirements/ requirements/
RUN pip install -r requirements/base.txt \
    # django-prometheus declares Django < 6.1 but works with it; installed without its pins.
    && pip install --no-deps -r requirements/no-deps.txt

COPY . .

# A non-root user owns nothing but what it must write; WhiteNoise serves static files
# from the apps themselves (WHITENOISE_USE_FINDERS), so there is no collectstatic step.
RUN useradd --system --uid 10001 --no-create-home --home-dir /app kbmanager \
    && python -m compileall -q /app
USER kbmanager

EXPOSE 8000
CMD ["gunicorn", "kbmanager.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--threads", "4", "--access-logfile", "-"]
