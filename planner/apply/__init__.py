"""Executing a plan: builds, exports, stamps, pulls and transfers in dependency order."""
