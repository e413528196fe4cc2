"""The sweep service (`lightsweep serve`): a REST API that launches sweeps through the CLI, keeps its jobs in
a database, reads trials from each job's Optuna storage and streams progress as Server-Sent Events."""
