"""Reads of links for the API and the admin."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet

from ingestion.models import Link, Tag
from tasks.models import Task

# A link's detail shows its most recent tasks; older ones stay in the task API.
LINK_DETAIL_TASKS = 50


def links_filter(
    *,
    status: str = "",
    category: str = "",
    tag: str = "",
    domain: str = "",
    q: str = "",
) -> QuerySet[Link]:
    """Links newest first, filtered; ``category`` is a name (case-insensitive) or an id, ``q`` searches
    title, URL and summary."""
    links = Link.objects.select_related("category").prefetch_related(
        Prefetch("tags", queryset=Tag.objects.order_by("name"))
    )
    if status:
        links = links.filter(status=status)
    if category:
        if category.isdigit():
            links = links.filter(category_id=int(category))
        else:
            links = links.filter(category__name__iexact=category)
    if tag:
        links = links.filter(tags__name=tag.strip().lower())
    if domain:
        links = links.filter(domain__iexact=domain.strip())
    if q:
        links = links.filter(
            Q(title__icontains=q) | Q(normalized_url__icontains=q) | Q(url__icontains=q) | Q(summary__icontains=q)
        )
    return links.order_by("-created_at", "-id")


def link_detail(*, link_id: int) -> Link | None:
    """The link with its category, tags and newest tasks (as ``recent_tasks``), or None."""
    link = (
        Link.objects.select_related("category")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.order_by("name")))
        .filter(id=link_id)
        .first()
    )
    if link is not None:
        link.recent_tasks = list(
            Task.objects.filter(link_id=link_id)
            .order_by("-created_at", "-id")
            .only("id", "kind", "status", "created_at", "finished_at", "error_message", "attempts")[:LINK_DETAIL_TASKS]
        )
    return link
