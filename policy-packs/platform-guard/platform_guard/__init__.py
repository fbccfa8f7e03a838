"""platform-guard: the CrossGuard policies of the platform and the one cost model.

Self-contained: the Pulumi CLI runs the pack from its own virtualenv with this directory on the
path; the program and `platformctl` import the same package (installed from here)."""
