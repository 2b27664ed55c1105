"""Golden sets and the eval runner: red-team plans that must get nothing applied, slash commands with expected plans."""
