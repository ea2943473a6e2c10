"""Platform adapters: each translates between one chat platform and briefbot's neutral core."""
