"""What every study under benchmarks/ shares: ``runs`` (paths, the GLUE directory and model, the one
runner of ``nxm-deploy train`` in a subprocess, result files), ``stats`` (intervals and tests) and
``report`` (markdown tables, the marked sections of docs/RESULTS.md, figures).

A study is a script run as ``python benchmarks/NAME.py``: Python puts benchmarks/ first on
``sys.path`` itself, so ``from common import runs`` needs no path of its own.
"""
