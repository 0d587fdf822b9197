from __future__ import annotations

from django.urls import path

from tasks import views

# Task ids are taken as strings and validated in the view, so a malformed id is a 400 naming the field.
urlpatterns = [
    path("tasks/", views.TaskListApi.as_view(), name="api-tasks"),
    path("tasks/bulk/", views.TaskBulkApi.as_view(), name="api-tasks-bulk"),
    path("tasks/<str:task_id>/", views.TaskDetailApi.as_view(), name="api-task-detail"),
    path("tasks/<str:task_id>/cancel/", views.TaskCancelApi.as_view(), name="api-task-cancel"),
    path("tasks/<str:task_id>/retry/", views.TaskRetryApi.as_view(), name="api-task-retry"),
]
