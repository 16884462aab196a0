"""Recorded real Realtime traffic and the tools that replay it (see README.md)."""
