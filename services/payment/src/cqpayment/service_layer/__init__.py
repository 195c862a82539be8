"""Payment's use cases: one function per command, on ports and a unit-of-work factory."""
