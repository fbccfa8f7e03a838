"""The Kubernetes side of the platform: where its components install.

"""

from __future__ import annotations

# Namespaces the platform's own components run in: never team namespaces, never matched by the
# admission policies (node-exporter, the CNI, Gatekeeper itself need what those policies forbid).
PLATFORM_NAMESPACES = ("kube-system", "kube-public", "kube-node-lease", "default",
                       "gatekeeper-system", "monitoring", "vault", "cosign-system", "argocd",
                       "cert-manager")
