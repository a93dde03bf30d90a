"""The harness: agreement with the oracle, timing, reports and the command line.

It uses :mod:`impls` through its registry and contract only; it never imports JAX or torch.
"""
