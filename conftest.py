"""Repo-wide pytest set-up: hypothesis without deadlines (first calls compile kernels)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "gradwise",
    deadline=None,
    max_examples=40,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile("gradwise")
