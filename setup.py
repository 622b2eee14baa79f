"""The C parts of probes/ber.py (probes/_ber.c) and probes/icmp.py (probes/_icmp.c); everything else is in
pyproject.toml."""

from setuptools import Extension, setup

FLAGS = ["-O2", "-Wall", "-Wextra", "-Wno-missing-field-initializers", "-Wno-unused-parameter"]

setup(
    ext_modules=[
        Extension("probes._ber", ["probes/_ber.c"], extra_compile_args=FLAGS),
        Extension("probes._icmp", ["probes/_icmp.c"], extra_compile_args=FLAGS),
    ]
)
