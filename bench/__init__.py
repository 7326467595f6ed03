"""Benchmarks of the XTTS serving path: our engine, Triton and the gateway, against the reference way of serving XTTS.

Every comparison runs both sides on the same model object (same weights), the same requests and
the same token counts, in the same process and run, so that ratios stay meaningful on a noisy
shared machine. `python -m bench --help` lists the stages.
"""
