"""Instructor tooling for cnnlab: nbgrader configuration, authoring helpers and the grading CLI."""
