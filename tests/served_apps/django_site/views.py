"""Views of the test Django project: a page with a CSRF-protected form, the form's POST, and
a streamed response."""
from __future__ import annotations

import html

from django.http import HttpResponse, StreamingHttpResponse
from django.middleware.csrf import get_token
from django.views.decorators.http import require_GET, require_POST


@require_GET
def index(request):
    """A page with a form carrying the CSRF token (and setting the CSRF cookie)."""
    token = html.escape(get_token(request))
    return HttpResponse(
        '<!doctype html><link rel="stylesheet" href="/static/site.css">'
        f'<form method="post" action="/form"><input type="hidden" '
        f'name="csrfmiddlewaretoken" value="{token}"><input name="name">'
        f"<button>send</button></form><p>secure: {request.is_secure()}</p>")


@require_POST
def form(request):
    """The form's POST (the CSRF middleware checked it): what was sent."""
    return HttpResponse(f"hello {request.POST.get('name', '')}",
                        content_type="text/plain; charset=utf-8")


def stream(request):
    """A StreamingHttpResponse: ``n`` lines from a generator (no content-length)."""
    count = int(request.GET.get("n", "100"))
    return StreamingHttpResponse((f"line {i}\n".encode() for i in range(count)),
                                 content_type="text/plain")
