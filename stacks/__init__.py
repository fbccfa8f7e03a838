"""Composition of the platform per environment, and the one configuration model."""
