"""Test support shared by streamtune's own tests: hypothesis strategies for job specs and DAGs."""
