import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ops_site.settings.base")

app = Celery("ops_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
