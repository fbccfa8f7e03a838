"""Reusable Pulumi components of the platform. A module per component, named after it."""
