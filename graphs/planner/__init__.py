"""The planner graph: a command in, a typed, policy-checked, simulated or applied change set out."""
