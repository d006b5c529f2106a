# Production image: gunicorn for the web, the same image for the Celery worker and beat.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    DJANGO_SETTINGS_MODULE=ops_site.settings.production OPS_VAR_DIR=/app/var
WORKDIR /app
COPY . .
RUN pip install --no-cache-dir -e . \
 && SECRET_KEY=build-only-not-secret-build-only-not-secret-build-only ALLOWED_HOSTS=build \
    python manage.py collectstatic --noinput -v 0 \
 && useradd --system --home /app opsdesk && mkdir -p /app/var && chown -R opsdesk /app/var
USER opsdesk
EXPOSE 8000
CMD ["gunicorn", "ops_site.wsgi", "--config", "gunicorn.conf.py", "--bind", "0.0.0.0:8000", "--workers", "3", "--access-logfile", "-"]
