"""Benchmarks: what a deployment costs with omerowizard against doing it by hand (issue 8).

Run ``python3 -m bench.run`` from the checkout as root; see the Benchmarks page of the manual (docs/benchmarks.md).
"""
