"""The home page: paste or upload links and watch them go through the pipeline.

The page itself is a plain template; ``ingestion/static/ingestion/home.js``
talks to the links API with the session (POST /api/links/, POST
/api/links/import, GET /api/links/), so the page and API clients share one code path.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import ensure_csrf_cookie

# How often the page asks for the recent links, and how many it shows.
REFRESH_MILLISECONDS = 2500
RECENT_LINKS = 25


@login_required
@ensure_csrf_cookie
def home(request: HttpRequest) -> HttpResponse:
    """The logged-in user's start page (anonymous visitors are sent to the admin login)."""
    user = request.user
    context = {
        "can_submit": user.has_perm("ingestion.add_link"),
        "can_view": user.has_perm("ingestion.view_link"),
        "refresh_ms": REFRESH_MILLISECONDS,
        "recent_links": RECENT_LINKS,
        "submit_max": settings.LINKS_SUBMIT_MAX,
    }
    return render(request, "home.html", context)
