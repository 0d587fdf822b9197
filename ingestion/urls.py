from __future__ import annotations

from django.urls import path

from ingestion import views

urlpatterns = [
    path("links/", views.LinkListView.as_view(), name="link-list"),
    path("links/import", views.LinkImportView.as_view(), name="link-import"),
    path("links/<int:link_id>/", views.LinkDetailView.as_view(), name="link-detail"),
    path("parsing/sync", views.ParsingSyncView.as_view(), name="parsing-sync"),
    path("ai/process", views.AIProcessView.as_view(), name="ai-process"),
    path("notion/sync", views.NotionSyncView.as_view(), name="notion-sync"),
]
