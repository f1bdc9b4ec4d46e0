"""Renderers: turn an AuditResult into text for people (presentation only)."""
