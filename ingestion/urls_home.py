from __future__ import annotations

from django.urls import path

from ingestion import views_home

urlpatterns = [
    path("", views_home.home, name="home"),
]
