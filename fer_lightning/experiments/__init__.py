"""Comparing runs: readable sweep-job names, each run's result.json, sweep summaries (a Hydra callback) and
``scripts/compare.py``'s table and plot for runs made separately."""
