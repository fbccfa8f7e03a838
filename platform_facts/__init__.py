"""The platform's facts, in one plain package that everything else imports: the cost model and
its prices, what each instance type holds and EKS's reservations, the Pod Security Standards,
what each AWS-calling workload may be granted, and what the Pulumi SDKs declare per type.

Each fact names its source and the date it was read. Nothing here imports the program, the
review or the policy pack: `components/`, `platformctl/` and the CrossGuard pack
(`policy-packs/platform-guard/`, which carries this package beside its policies through a
symbolic link, so it stays self-contained when the Pulumi CLI runs it) all import it.
"""
