"""ONNX models on disk and onnxruntime sessions over them.

onnxruntime runs these networks about three times faster than eager torch on a CPU,
and the same files are what an export carries away. The backbone graphs of the base
models are exported once into a cache folder and reused by every run.
"""

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import onnxruntime
import timm
import torch

from trainer.backbones import Features, base_model, imagenet_network

DEFAULT_CACHE_DIR = Path(os.environ.get("VIZE_MODEL_CACHE", Path.home() / ".cache" / "vizeapp"))


def export_onnx(module, size, path, output_name):
    """Write module as an ONNX graph taking (n, 3, size, size) pixels, atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    module.eval()
    example = torch.zeros(1, 3, size, size)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(handle)
    try:
        with warnings.catch_warnings():
            # The TorchScript exporter warns that it is deprecated; it is the one that
            # writes these graphs without onnxscript.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                example,
                temporary,
                input_names=["pixels"],
                output_names=[output_name],
                dynamic_axes={"pixels": {0: "n"}, output_name: {0: "n"}},
                opset_version=17,
                dynamo=False,
            )
        os.replace(temporary, path)
    finally:
        Path(temporary).unlink(missing_ok=True)
    return path


def cached_graph(name, kind, cache_dir=None):
    """The ONNX graph of a base model's pooled features (kind "features") or of its
    whole ImageNet classifier (kind "imagenet"), exported on first use."""
    base = base_model(name)
    folder = Path(cache_dir or DEFAULT_CACHE_DIR)
    path = folder / f"{base.architecture}-{kind}-timm{timm.__version__}.onnx"
    if not path.exists():
        network = imagenet_network(name)
        module = Features(network) if kind == "features" else network
        export_onnx(module, base.preprocessing.size, path, kind)
    return path


def session(path, threads=None):
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    return onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def with_linear_head(features_path, weights, bias, out_path):
    """The features graph followed by L2 normalisation, the fitted linear head and a
    softmax: one ONNX file from pixels to class scores."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    graph_model = onnx.load(str(features_path))
    graph = graph_model.graph
    classes = weights.shape[0]
    graph.initializer.extend(
        [
            numpy_helper.from_array(weights.astype("float32"), "head_weight"),
            numpy_helper.from_array(bias.astype("float32"), "head_bias"),
            numpy_helper.from_array(np.array(1e-12, np.float32), "norm_floor"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("ReduceL2", ["features"], ["norm"], axes=[1], keepdims=1),
            helper.make_node("Max", ["norm", "norm_floor"], ["safe_norm"]),
            helper.make_node("Div", ["features", "safe_norm"], ["unit_features"]),
            helper.make_node(
                "Gemm", ["unit_features", "head_weight", "head_bias"], ["logits"], transB=1
            ),
            helper.make_node("Softmax", ["logits"], ["scores"], axis=1),
        ]
    )
    del graph.output[:]
    graph.output.append(helper.make_tensor_value_info("scores", TensorProto.FLOAT, ["n", classes]))
    out_path = Path(out_path)
    temporary = out_path.with_suffix(".onnx.tmp")
    onnx.save(graph_model, str(temporary))
    os.replace(temporary, out_path)
    return out_path
