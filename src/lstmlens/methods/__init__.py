"""Explanation methods, one module each, found through a registry."""
