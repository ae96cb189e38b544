"""URLs of the test Django project."""
from __future__ import annotations

from django.urls import path

from . import views

urlpatterns = [
    path("", views.index),
    path("form", views.form),
    path("stream", views.stream),
]
