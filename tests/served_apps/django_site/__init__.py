"""A minimal real Django project served by kyoukai_h2fast in ``tests/test_django.py``.

``tests.served_apps.django_site.wsgi:application`` is what ``django-admin startproject`` gives
(``mysite.wsgi:application``); static files are served by WhiteNoise from ``STATIC_ROOT``
after ``collectstatic`` (compressed copies made by its storage), as in production.
"""
