"""Experiment runners: baseline and SRN/GRN arms side by side over seeds."""
