from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/rq/", include("django_rq.urls")),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/monitoring/", include("monitoring.urls")),
    path("api/", include("tasks.urls")),
    path("api/", include("ingestion.urls")),
    path("", include("ingestion.urls_home")),
]

# JSON for unknown /api/ URLs (an id of the wrong type, a typo), an HTML page elsewhere.
handler404 = "kbmanager.api.not_found"
