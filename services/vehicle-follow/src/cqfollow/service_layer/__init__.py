"""Vehicle-follow use cases: one async function per command, on ports (no I/O library)."""
