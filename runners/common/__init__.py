"""Machinery shared by every runner: the command line and its invocation (device, preset,
refiner arms, --dry-run), frozen settings, seeding, runs and results, statistics, plots."""
