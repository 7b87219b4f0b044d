"""The manifests every output writes, one frozen dataclass per kind, each with ``from_json`` (checked:
one line naming the file and the field, and a schema newer than this tool refused) and ``to_json``.

    run = RunManifest.read("runs/rte-admm")          # nxm.json
    run.facts.pattern                                 # nm.Pattern(2, 4), parsed once; None: dense
    export = ExportManifest.read("exports/rte-admm")  # export.json
    export.source.layers, export.onnx_path, export.run_dir

- ``fields``: file names and kinds, the header check, :class:`Provenance`, typed field reads;
- ``run``: ``nxm.json`` (:class:`RunManifest`) and :class:`RunFacts`, what a run says about its model:
  the same keys in ``nxm.json`` and in ``export.json``'s ``source_run``;
- ``export``: ``export.json`` (:class:`ExportManifest`) and its sections;
- ``report``: ``report.json`` of a bench (:class:`ReportManifest`) and the JSON file of a sensitivity
  analysis (:class:`SensitivityManifest`).

Their keys are documented in README.md, docs/export.md and docs/bench.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nxm_deploy.lazy import lazy_exports

if TYPE_CHECKING:
    from nxm_deploy.manifest.export import (
        EXPORT_SCHEMA,
        ExportManifest,
        OnnxSection,
        OnnxTensor,
        SourceRun,
        TensorrtSection,
        TokenizerSection,
    )
    from nxm_deploy.manifest.fields import (
        EXPORT_KIND,
        EXPORT_MANIFEST,
        REPORT_KIND,
        REPORT_MANIFEST,
        RUN_KIND,
        RUN_MANIFEST,
        SENSITIVITY_KIND,
        Provenance,
        positive_int,
        provenance,
    )
    from nxm_deploy.manifest.report import (
        REPORT_SCHEMA,
        SENSITIVITY_SCHEMA,
        ReportManifest,
        SensitivityManifest,
    )
    from nxm_deploy.manifest.run import RUN_SCHEMA, RunFacts, RunManifest

__all__ = [
    "EXPORT_KIND",
    "EXPORT_MANIFEST",
    "EXPORT_SCHEMA",
    "REPORT_KIND",
    "REPORT_MANIFEST",
    "REPORT_SCHEMA",
    "RUN_KIND",
    "RUN_MANIFEST",
    "RUN_SCHEMA",
    "SENSITIVITY_KIND",
    "SENSITIVITY_SCHEMA",
    "ExportManifest",
    "OnnxSection",
    "OnnxTensor",
    "Provenance",
    "ReportManifest",
    "RunFacts",
    "RunManifest",
    "SensitivityManifest",
    "SourceRun",
    "TensorrtSection",
    "TokenizerSection",
    "positive_int",
    "provenance",
]

_MODULES = {
    "fields": [
        "EXPORT_KIND",
        "EXPORT_MANIFEST",
        "REPORT_KIND",
        "REPORT_MANIFEST",
        "RUN_KIND",
        "RUN_MANIFEST",
        "SENSITIVITY_KIND",
        "Provenance",
        "positive_int",
        "provenance",
    ],
    "export": [
        "EXPORT_SCHEMA",
        "ExportManifest",
        "OnnxSection",
        "OnnxTensor",
        "SourceRun",
        "TensorrtSection",
        "TokenizerSection",
    ],
    "report": ["REPORT_SCHEMA", "SENSITIVITY_SCHEMA", "ReportManifest", "SensitivityManifest"],
    "run": ["RUN_SCHEMA", "RunFacts", "RunManifest"],
}

__getattr__, __dir__ = lazy_exports(
    __name__, {name: f"nxm_deploy.manifest.{module}" for module, names in _MODULES.items() for name in names}
)
