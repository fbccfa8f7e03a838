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

    @property
    def error_budget(self) -> float:
        """The share of requests that may fail (1 - availability), rounded as the platform's
        SLOs round theirs (components.slo.SloSpec)."""
        return round(1 - self.availability, 10)


class Scaling(ArgsModel):
    min_replicas: int = Field(2, ge=2, le=100, description="Replicas at least (2: one can be "
                              "evicted at a time).")
    max_replicas: int = Field(6, ge=2, le=200, description="Replicas at most.")
    target_cpu_percent: int = Field(70, ge=30, le=90, description="CPU utilisation the HPA "
                                    "aims at (readiness holds it to the load-test report's "
                                    "proposal, bench/load.py).")
    peak_requests_per_second: float | None = Field(
        None, gt=0, le=1_000_000, description="The rate the service must serve at its busiest: "
        "readiness checks that maxReplicas replicas serve it by the load-test report's "
        "capacity per replica.")

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


RelativePath = Annotated[str, pattern(r"[A-Za-z0-9_][A-Za-z0-9._/-]*",
                                      "a path relative to the spec file, e.g. "
                                      "checkout/openapi.yaml (no leading / and no ..)")]


class Api(ArgsModel):
    """The API a service provides: an API entity in the software catalog, its definition read
    from the file."""

    type: Literal["openapi", "asyncapi", "graphql", "grpc"] = Field(
        description="The definition's format (Backstage's API types).")
    definition: RelativePath = Field(
        description="The definition file, relative to the spec file.")

    @model_validator(mode="after")
    def _inside(self) -> Api:
        if ".." in self.definition.split("/"):
            raise Invalid("definition", self.definition, "stays below the spec's directory; "
                          "allowed: a path without ..")
        return self


class CanaryStep(ArgsModel):
    weight: int = Field(ge=1, le=100, description="Share of requests sent to the new version, "
                        "%: the shared ALB splits them for a public service; an internal one "
                        "(no load balancer in front) splits by replicas, rounded up.")
    pause_minutes: int = Field(5, ge=0, le=120, description="Observation time at this weight "
                               "(the analysis runs meanwhile).")


MigrationName = Annotated[str, pattern(r"[0-9]{4}_[a-z0-9_]{1,40}",
                                         "a migration's name: 4 digits, _, lower-case words, "
                                         "e.g. 0002_orders_sku")]


class MigrationStep(ArgsModel):
    name: MigrationName = Field(description="The step, as the service's migrate command "
                                "knows it (the reference service: its migrations/<name>.sql).")
    phase: Literal["expand", "migrate", "contract"] = Field(
        description="`expand`: adds what the new release needs, the old one unaffected "
        "(a column, a table, a trigger keeping both shapes filled); `migrate`: moves data "
        "(a backfill); `contract`: removes the old shape, once no release uses it.")
    contracts: MigrationName | None = Field(
        None, description="(contract) The earlier expand step whose old shape this removes.")
    after: Digest | None = Field(
        None, description="(contract) The release (image digest) that stopped using the old "
        "shape: the step ships only once that release has run in prod (`platformctl promote` "
        "records), so no release that needs the old shape is left anywhere.")

    @model_validator(mode="after")
    def _contract_fields(self) -> MigrationStep:
        if self.phase == "contract":
            if self.contracts is None:
                raise Invalid("contracts", None, "required for a contract step: the expand "
                              "step whose old shape it removes")
            if self.after is None:
                raise Invalid("after", None, "required for a contract step: the digest of the "
                              "release that stopped using the old shape")
        else:
            for key, value in (("contracts", self.contracts), ("after", self.after)):
                if value is not None:
                    raise Invalid(key, value, f"only for a contract step (this one is "
                                  f"{self.phase})")
        return self


class Migrations(ArgsModel):
    command: tuple[str, ...] = Field(
        min_length=1, description="The image's migrate command; each step's Job runs it with "
        "the step's name appended (the reference service: `[python, -m, checkout, migrate]`).")
    steps: tuple[MigrationStep, ...] = Field(
        min_length=1, description="Every migration, in the order they apply: each becomes an "
        "Argo CD PreSync hook Job (same image, identity and database login as the service) "
        "that runs before the release's pods change.")
    timeout_seconds: int = Field(600, ge=60, le=7200, description="Longest a step may run "
                                 "(the Job's activeDeadlineSeconds); the sync fails after.")

    @model_validator(mode="after")
    def _ordered(self) -> Migrations:
        names = [step.name for step in self.steps]
        for index, name in enumerate(names):
            if name in names[:index]:
                raise Invalid(f"steps[{index}].name", name, "is listed twice")
            if index and name < names[index - 1]:
                raise Invalid(f"steps[{index}].name", name, f"comes after {names[index - 1]!r}; "
                              "steps apply in name order: list them so")
        for index, step in enumerate(self.steps):
            if step.contracts is None:
                continue
            if step.contracts not in names:
                raise Invalid(f"steps[{index}].contracts", step.contracts,
                              "is not a step of this list; allowed: an expand step before it")
            target = names.index(step.contracts)
            if target > index:
                raise Invalid(f"steps[{index}].contracts", step.contracts,
                              "comes after this contract step: a contract ships after its "
                              "expand, never before")
            if self.steps[target].phase != "expand":
                raise Invalid(f"steps[{index}].contracts", step.contracts,
                              f"is a {self.steps[target].phase} step; allowed: an expand step")
        return self


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
    migrations: Migrations | None = Field(
        None, description="Schema migrations, expand-migrate-contract (needs `database: "
        "true`).")
    api: Api | None = Field(
        None, description="The API it provides (the software catalog's API entity).")
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
    def _migrations_need_a_database(self) -> ServiceSpec:
        if self.migrations is not None and not self.database:
            raise Invalid("migrations", f"{len(self.migrations.steps)} steps", "need database: "
                          "true (the steps log in as the service's database role)")
        if self.migrations is not None:
            longest = max(len(step.name) for step in self.migrations.steps)
            if len(self.name) + len("-migrate-") + longest > 63:
                raise Invalid("name", self.name, "is too long for its migration Jobs' names "
                              "(name + '-migrate-' + step name must fit 63 characters)")
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
