"""Lightning callbacks used by the run path and composed from the `callbacks` config group."""
