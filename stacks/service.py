"""The service spec: what a team writes to get a service onto the platform (the golden path).

A spec is intent, not Kubernetes: name, team, tier, exposure, port, image, SLO, scaling,
resources, dependencies and whether it uses the platform's PostgreSQL (credentials from Vault).
`platformctl new-service <spec>` turns it into the service's manifests under `gitops/`
(`platformctl/golden.py`). Like the stack config, a bad spec is one clear error per problem,
naming the file, the key, the bad value and what is allowed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from components.args import ArgsModel, Invalid, PodResources, Slug, pattern
from stacks import userfile
from stacks.config import ConfigError, validation_problems

ImageRepository = Annotated[
    str, pattern(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?(:\d+)?(/[a-z0-9._-]+)+",
                  "an image repository without tag or digest, e.g. "
                  "123456789012.dkr.ecr.us-east-1.amazonaws.com/checkout")]
Digest = Annotated[str, pattern(r"sha256:[a-f0-9]{64}", "an image digest, sha256:<64 hex>")]
Hostname = Annotated[
    str, pattern(r"([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}",
                  "a DNS name, e.g. checkout.example.com")]
HttpPath = Annotated[str, pattern(r"/[A-Za-z0-9/._-]*", "an HTTP path, e.g. /ready")]


class Image(ArgsModel):
    repository: ImageRepository = Field(description="Image repository (no tag).")
    digest: Digest = Field(description="The digest new environments start from; promotion "
                           "then changes it in gitops/environments/<env>/<team>-<name>.yaml.")


class Probes(ArgsModel):
    readiness_path: HttpPath = Field("/ready", description="Ready to take traffic.")
    liveness_path: HttpPath = Field("/live", description="Alive (restart when not).")
    startup_seconds: int = Field(60, ge=5, le=600, description="Longest start-up allowed.")


class ServiceSlo(ArgsModel):
    availability: float = Field(0.999, ge=0.9, lt=1, description="Share of requests without a "
                                "5xx, over 30 days.")
    latency_p99_ms: int = Field(300, ge=5, le=30000, description="p99 latency the canary must "
                                "keep, in milliseconds.")


class Scaling(ArgsModel):
    min_replicas: int = Field(2, ge=2, le=100, description="Replicas at least (2: one can be "
                              "evicted at a time).")
    max_replicas: int = Field(6, ge=2, le=200, description="Replicas at most.")
    target_cpu_percent: int = Field(70, ge=30, le=90, description="CPU utilisation the HPA "
                                    "aims at.")

    @model_validator(mode="after")
    def _ordered(self) -> Scaling:
        if self.max_replicas < self.min_replicas:
            raise Invalid("maxReplicas", self.max_replicas, f"is below minReplicas "
                       f"({self.min_replicas})")
        return self


class Dependency(ArgsModel):
    service: Slug = Field(description="Service called.")
    namespace: Slug = Field(description="Its namespace.")
    port: int = Field(ge=1, le=65535, description="Its container port.")


class CanaryStep(ArgsModel):
    weight: int = Field(ge=1, le=100, description="Share of requests sent to the new version, "
                        "%: the shared ALB splits them for a public service; an internal one "
                        "(no load balancer in front) splits by replicas, rounded up.")
    pause_minutes: int = Field(5, ge=0, le=120, description="Observation time at this weight "
                               "(the analysis runs meanwhile).")


class ServiceSpec(ArgsModel):
    """A service on the platform (the golden path's input)."""

    name: Slug = Field(description="Service name (the `app.kubernetes.io/name` label).")
    team: Slug = Field(description="Owning team, one of `platform:teams`.")
    tier: Literal["critical", "standard"] = Field(
        description="`critical` pages on its SLO; `standard` opens tickets only.")
    exposure: Literal["public", "internal"] = Field(
        description="`public`: reachable from the load balancers (and counted in the ingress "
        "SLO); `internal`: from inside the cluster only.")
    host: Hostname | None = Field(
        None, description="Public DNS name (exposure `public` only): an HTTPS Ingress on the "
        "platform's shared internet-facing ALB, its certificate found in ACM by this name.")
    port: int = Field(ge=1024, le=65535, description="Container port (non-root: 1024 and up).")
    image: Image = Field(description="The container image.")
    probes: Probes = Field(default_factory=Probes, description="Health endpoints.")
    slo: ServiceSlo = Field(default_factory=ServiceSlo, description="Objectives.")
    scaling: Scaling = Field(default_factory=Scaling, description="Horizontal scaling.")
    resources: PodResources = Field(description="Requests and limits per replica.")
    dependencies: tuple[Dependency, ...] = Field(
        (), description="Services it calls (egress is allowed to exactly these).")
    ingress_from: tuple[Slug, ...] = Field(
        (), description="Other namespaces whose pods may call it (same namespace always can).")
    secrets: tuple[Slug, ...] = Field(
        (), description="Static secrets from Vault's KV v2, each at "
        "`secret/<team>/<name>/<secret>`: synced by the Vault Secrets Operator into the Secret "
        "`<name>-<secret>` and mounted read-only as files under `/var/run/secrets/<secret>/` "
        "(the Rollout restarts when one changes).")
    database: bool = Field(False, description="Uses the platform's PostgreSQL: short-lived "
                           "credentials from Vault in the Secret `<name>-db`, mounted as files "
                           "(`host`, `port`, `dbname`, `username`, `password`) under the "
                           "directory `DB_CREDENTIALS_DIR` names, to be read again for each new "
                           "connection (list the service in `platform:teams[].services`).")
    canary: tuple[CanaryStep, ...] = Field(
        (CanaryStep(weight=10), CanaryStep(weight=50), CanaryStep(weight=100, pauseMinutes=0)),
        min_length=1, description="Canary steps; the last must reach 100.")

    @model_validator(mode="after")
    def _host_when_public(self) -> ServiceSpec:
        if self.exposure == "public" and self.host is None:
            raise Invalid("host", None, "required with exposure: public (the DNS name to serve)")
        if self.exposure == "internal" and self.host is not None:
            raise Invalid("host", self.host, "only with exposure: public")
        return self

    @model_validator(mode="after")
    def _canary_completes(self) -> ServiceSpec:
        weights = [step.weight for step in self.canary]
        if weights != sorted(weights) or weights[-1] != 100:
            raise Invalid("canary", weights, "weights must rise and end at 100")
        return self


def load(path: Path) -> ServiceSpec:
    """Read and validate a spec file; `ConfigError` names the file and every problem."""
    source = str(path)
    raw: Any = userfile.read_yaml(path, source)
    if not isinstance(raw, dict):
        raise ConfigError(source, ["a service spec is a mapping of keys (see "
                                   "docs/service-spec.md)"])
    try:
        return ServiceSpec.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(source, validation_problems(exc, ServiceSpec, prefix="")) from None
