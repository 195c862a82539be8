"""The runner's use cases: a night's run of the catalogue, the scheduler, the run list."""
