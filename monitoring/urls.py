from __future__ import annotations

from django.urls import path

from monitoring import views

urlpatterns = [
    path("health", views.HealthApi.as_view(), name="monitoring-health"),
    path("health/detailed", views.HealthDetailedApi.as_view(), name="monitoring-health-detailed"),
    path("metrics", views.MetricsApi.as_view(), name="monitoring-metrics"),
    path("workers", views.WorkersApi.as_view(), name="monitoring-workers"),
    path("queues", views.QueuesApi.as_view(), name="monitoring-queues"),
]
