"""Loopback test server fixture (see its helper)."""
