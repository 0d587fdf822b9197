from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone


class LinkStatus(models.TextChoices):
    NEW = "new", "New"
    PARSING = "parsing", "Parsing"
    PARSED = "parsed", "Parsed"
    SUMMARIZING = "summarizing", "Summarizing"
    READY = "ready", "Ready"
    SYNCING = "syncing", "Syncing to Notion"
    SYNCED = "synced", "Synced to Notion"
    FAILED = "failed", "Failed"


class Category(models.Model):
    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    keywords = models.JSONField(default=list, blank=True, help_text="Words that suggest this category")

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "categories"

    def __str__(self) -> str:
        return self.name


class Tag(models.Model):
    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Link(models.Model):
    url = models.TextField(help_text="The URL as submitted")
    normalized_url = models.TextField(unique=True)
    final_url = models.TextField(blank=True, default="")
    domain = models.CharField(max_length=255, blank=True, default="", db_index=True)
    status = models.CharField(max_length=20, choices=LinkStatus.choices, default=LinkStatus.NEW, db_index=True)
    title = models.TextField(blank=True, default="")
    authors = models.JSONField(default=list, blank=True)
    published_at = models.DateTimeField(null=True, blank=True)
    top_image = models.TextField(blank=True, default="")
    language = models.CharField(max_length=20, blank=True, default="")
    text = models.TextField(blank=True, default="")
    word_count = models.PositiveIntegerField(default=0)
    content_hash = models.CharField(max_length=64, blank=True, default="")
    summary = models.TextField(blank=True, default="")
    category = models.ForeignKey(Category, null=True, blank=True, on_delete=models.SET_NULL, related_name="links")
    tags = models.ManyToManyField(Tag, blank=True, related_name="links")
    ai_content_hash = models.CharField(
        max_length=64, blank=True, default="", help_text="Content hash the current summary was made from"
    )
    notion_page_id = models.CharField(max_length=64, blank=True, default="")
    notion_url = models.TextField(blank=True, default="")
    last_error = models.TextField(blank=True, default="")
    submitted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="links"
    )
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    updated_at = models.DateTimeField(auto_now=True)
    parsed_at = models.DateTimeField(null=True, blank=True)
    summarized_at = models.DateTimeField(null=True, blank=True)
    synced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.title or self.url

    @classmethod
    def normalize(cls, url: str) -> str:
        """The form of ``url`` that makes two submissions of one page the same link.

        Scheme and host lower-cased, default port, fragment and tracking
        parameters removed; raises ``InvalidURL`` (a ``ValueError``) with the reason.
        """
        # Imported here so that migrations and the model layer load without the helpers' dependencies.
        from ingestion.lib.urls import normalize_url

        return normalize_url(url)

    @property
    def summary_is_current(self) -> bool:
        """True when the summary was made from the text the link has now."""
        return bool(self.summary and self.content_hash and self.ai_content_hash == self.content_hash)


class AIResultCache(models.Model):
    """An AI answer for one text, model and prompt version, so the same article is never paid for twice.

    Kept in PostgreSQL rather than the Redis cache: answers cost money and
    time, Redis may evict keys or be flushed, and the table is small (one row
    per distinct article text).
    """

    content_hash = models.CharField(max_length=64)
    model = models.CharField(max_length=200)
    prompt_version = models.CharField(max_length=50)
    result = models.JSONField()
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["content_hash", "model", "prompt_version"], name="ai_cache_key_unique")
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.prompt_version} {self.content_hash[:12]}"
