"""nxm-deploy: N:M (2:4) sparse fine-tuning of BERT-family encoders with ADMM, export to ONNX and
TensorRT with the pattern proven at every step, and latency/accuracy reports against dense."""

__version__ = "0.1.0"
