"""The checkout API: the platform's reference service (services/checkout.yaml is its spec)."""
