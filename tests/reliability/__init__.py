"""Reliability: faults, several processes and a soak, each against real servers."""
