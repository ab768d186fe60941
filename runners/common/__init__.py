"""Machinery shared by every runner: command line, presets, seeding, results, statistics."""
