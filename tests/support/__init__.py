"""Helpers shared by test modules across directories. Test modules import from here, never from
each other (docs/architecture.md, "How tests map to src")."""
