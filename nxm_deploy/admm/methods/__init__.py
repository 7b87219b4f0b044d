"""The built-in methods, one module each; importing this package imports (so registers) every module
in it, in name order (the order of their flags in ``--help``): a new method is one new file here."""

import importlib
import pkgutil

for _module in sorted(m.name for m in pkgutil.iter_modules(__path__)):
    importlib.import_module(f"{__name__}.{_module}")
