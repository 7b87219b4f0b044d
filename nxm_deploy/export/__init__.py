"""Export a run directory to ONNX (and TensorRT) with the N:M pattern proven at each step.

- ``pipeline``: run dir -> export dir (``export_run``), the steps in order;
- ``onnx``: ``torch.onnx.export`` with dynamic batch/sequence, input/output description;
- ``check``: the N:M check on an ONNX graph along each MatMul/Gemm's reduction axis;
- ``parity``: ONNX Runtime against PyTorch on real sentences, every failure in one ParityError;
- ``trt``: TensorRT engines with sparse weights, ``build_engine.sh``.

onnx, onnxruntime and tensorrt are imported inside the functions that use them.
"""
