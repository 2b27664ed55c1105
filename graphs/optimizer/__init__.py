"""Scheduled optimisation: detectors that turn warehouse facts and live platform state into typed proposals.

Each detector in ``graphs.optimizer.detectors`` is a pure function of a warehouse connection, the live
platforms and its parameters; it proposes actions with the reason and the numbers behind them and never
changes anything itself. Jobs (``agent.jobs``) hand the proposals to a planner run, where policy, approval
and audit decide what happens.
"""
