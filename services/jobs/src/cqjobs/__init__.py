"""The nightly job runner (R-JOB-1…6): a production component of its own (a Kubernetes
CronJob later), not inside a service. It works each job of a fixed catalogue through the
owning service's ``RunJob`` gRPC entry point, one bounded batch at a time, inside the
22:00–00:30 Asia/Shanghai window, under a cluster-wide PostgreSQL advisory lock per job,
and records every run (with its checkpoint) in its own ``jobs`` schema; it imports no
service package and touches no service's tables."""
