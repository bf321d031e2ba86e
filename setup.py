"""The one build step pyproject.toml cannot say: planner._lstat, the C reader of lstat signatures
(planner/_lstat.c). It is optional: where no C compiler is found the install goes on, and planner checks
signatures in Python (planner/keys/signatures.py), slower and the same."""

from setuptools import Extension, setup

setup(
    ext_modules=[Extension("planner._lstat", ["planner/_lstat.c"], optional=True, extra_compile_args=["-O2"])]
)
