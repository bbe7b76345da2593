"""Tests of the dashboard (lightnas.dashboard)."""
