"""Markers: arguments -> smoke specs, their errors at collection, fuzzed in whole sessions."""
