"""Traces: a span per request (and per query), sent by OTLP to the platform's gateway.

Configured by OpenTelemetry's standard variables, which the golden path sets on every service:
`OTEL_EXPORTER_OTLP_ENDPOINT` (the gateway), `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`
(team, environment, version = the image digest) and `OTEL_TRACES_SAMPLER`. Without an endpoint
(a laptop, the unit tests) nothing is exported. The incoming `traceparent` header is honoured,
so a caller's trace continues here; which traces are kept is the gateway's decision.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.propagate import extract
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

NAME = "checkout"


class Tracing:
    """The service's tracer; `shutdown()` flushes what is still batched (on SIGTERM)."""

    def __init__(self, environ: Mapping[str, str] | None = None):
        environ = os.environ if environ is None else environ
        self.provider = TracerProvider(resource=Resource.create())
        if environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            self.provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        self.tracer = self.provider.get_tracer(NAME)

    @contextmanager
    def request(self, method: str, route: str, path: str,
                headers: Mapping[str, str]) -> Iterator[Span]:
        """The server span of one request, continuing the caller's trace if it sent one."""
        with self.tracer.start_as_current_span(
                f"{method} {route}", context=extract({k.lower(): v for k, v in headers.items()}),
                kind=SpanKind.SERVER,
                attributes={"http.request.method": method, "http.route": route,
                            "url.path": path}, record_exception=True) as span:
            yield span

    @staticmethod
    def respond(span: Span, status: int) -> None:
        span.set_attribute("http.response.status_code", status)
        if status >= 500:
            span.set_status(Status(StatusCode.ERROR))

    @contextmanager
    def query(self, operation: str, table: str) -> Iterator[Span]:
        """A client span for one database statement, inside the current request's."""
        with self.tracer.start_as_current_span(
                f"{operation} {table}", kind=SpanKind.CLIENT,
                attributes={"db.system.name": "postgresql", "db.operation.name": operation,
                            "db.collection.name": table}) as span:
            yield span

    def shutdown(self) -> None:
        self.provider.shutdown()


__all__ = ["Tracing", "trace"]
