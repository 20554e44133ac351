"""Local tooling for callvault: the dev stack, the CLI, sample events. Never loaded by Lambda."""
