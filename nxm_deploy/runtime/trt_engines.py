"""The precision of engines that ONNX Runtime's TensorRT provider built and cached, read from the
engines themselves (needs TensorRT; imported inside the function)."""

from __future__ import annotations

from pathlib import Path

from nxm_deploy.runtime.trt_evidence import observed_precision, parse_inspector_json

__all__ = ["cached_engine_precision"]


def cached_engine_precision(folder: Path) -> str:
    """``"fp16 (TensorRT engine: Half 40, Float 3)"``, from every ``*.engine`` in ``folder`` (the
    provider's cache folder of one model); or a sentence saying why it cannot be read."""
    engines = sorted(Path(folder).glob("*.engine"))
    if not engines:
        return "unknown (no TensorRT engine in the provider's cache folder yet)"
    try:
        import tensorrt as trt
    except (ImportError, OSError):
        return "unknown (the tensorrt package is needed to read the provider's engines)"
    logger = trt.Logger(trt.Logger.ERROR)
    layers = []
    for path in engines:
        engine = trt.Runtime(logger).deserialize_cuda_engine(path.read_bytes())
        if engine is None:
            return f"unknown (TensorRT cannot load {path.name})"
        info = engine.create_engine_inspector().get_engine_information(trt.LayerInformationFormat.JSON)
        layers += parse_inspector_json(str(info))
    seen = observed_precision(layers)
    if seen["precision"] == "unknown":
        return "unknown (the provider built its engines without detailed layer information)"
    types = ", ".join(f"{k} {v}" for k, v in sorted(seen["layer_types"].items()))
    return f"{seen['precision']} (TensorRT engine: {types})"
