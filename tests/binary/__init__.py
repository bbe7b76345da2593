"""Tests of binary."""
