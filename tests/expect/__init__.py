"""Expectations: the matchers and their diffs, alone and through smoke sessions."""
