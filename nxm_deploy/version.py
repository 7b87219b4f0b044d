"""The tool's version (read by the package build and written into every manifest)."""

__version__ = "0.3.0"
