"""Triton Python-backend models that ``runtime.triton_text`` copies into a model repository as
``<model>/1/model.py``. Each runs inside Triton's Python backend stub and imports only what a stock
Triton container adds with pip (numpy, transformers, onnxruntime), never nxm_deploy:

- ``tokenize_model``: text (and text pairs) in, the model's int64 inputs out, padded to a sequence
  bucket, with a ``truncated`` flag;
- ``onnx_model``: ``model.onnx`` on ONNX Runtime's CPU provider, for a Triton without the ONNX
  Runtime backend (``--triton-backend python``);
- ``labels_model``: logits in, label names, softmax scores (or the regression value) out.
"""
