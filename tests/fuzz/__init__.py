"""Fuzzing: Hypothesis strategies for hostile requests, checks for live servers, and opt-in large runs."""
