"""Kubernetes API stand-in for the cloudcore.ha test lab (see README.md beside this file)."""
