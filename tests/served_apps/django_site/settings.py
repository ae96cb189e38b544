"""Settings of the test Django project: production-like (``DEBUG = False``), no database.

``DJANGO_SITE_STATIC_ROOT`` (environment) is where ``collectstatic`` puts the static files
and WhiteNoise serves them from (the test collects them into a temporary directory).
"""
from __future__ import annotations

import os
import tempfile

BASE_DIR = os.path.dirname(os.path.abspath(__file__))

SECRET_KEY = "kyoukai-h2fast-tests-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]

INSTALLED_APPS = ["django.contrib.staticfiles"]
MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",  # right after SecurityMiddleware
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
]
ROOT_URLCONF = "tests.served_apps.django_site.urls"
WSGI_APPLICATION = "tests.served_apps.django_site.wsgi.application"
DATABASES: dict = {}
USE_TZ = True
TIME_ZONE = "UTC"  # (Django sets the process time zone, so the server log's too, to this)

STATIC_URL = "/static/"
STATICFILES_DIRS = [os.path.join(BASE_DIR, "static")]
STATIC_ROOT = os.environ.get("DJANGO_SITE_STATIC_ROOT",
                             os.path.join(tempfile.gettempdir(), "kyoukai-h2fast-django-static"))
STORAGES = {
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# A handler of the project's own on django.request, which also propagates to the root logger
# (the everyday Django setup): each "Not Found" warning must be printed once.
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"site": {"format": "DJANGO-SITE %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "site"}},
    "loggers": {"django.request": {"handlers": ["console"], "level": "WARNING"}},
}
