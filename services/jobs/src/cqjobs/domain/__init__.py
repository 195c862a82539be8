"""The runner's pure rules: the job catalogue, run records, the night and the window."""
