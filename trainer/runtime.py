"""ONNX models on disk and onnxruntime sessions over them.

onnxruntime runs these networks about three times faster than eager torch on a CPU,
and the same files are what an export carries away. The backbone graphs of the base
models are exported once into a cache folder and reused by every run.
"""

import os
from importlib.metadata import version
from pathlib import Path

import numpy as np
import onnxruntime

from trainer.backbones import FEATURES_VERSION, base_model

DEFAULT_CACHE_DIR = Path(os.environ.get("VIZE_MODEL_CACHE", Path.home() / ".cache" / "vizeapp"))


def cached_graph(name, kind, cache_dir=None):
    """The ONNX graph of a base model's pooled features and late maps (kind "features",
    outputs "features" and "late_maps") or of its whole ImageNet classifier (kind
    "imagenet"), exported on first use."""
    base = base_model(name)
    folder = Path(cache_dir or DEFAULT_CACHE_DIR)
    versioned = f"features-v{FEATURES_VERSION}" if kind == "features" else kind
    path = folder / f"{base.architecture}-{versioned}-timm{version('timm')}.onnx"
    if not path.exists():
        # torch is imported only here: training and prediction run on onnxruntime, and
        # importing torch and timm costs seconds per job.
        from trainer import networks

        network = networks.imagenet_network(name)
        if kind == "features":
            module, outputs = networks.Features(network), ["features", "late_maps"]
        else:
            module, outputs = network, [kind]
        networks.export_onnx(module, base.preprocessing.size, path, outputs)
    return path


def session(path, threads=None):
    """A session for batches of images (embedding a task's photos), safe to share
    between threads; portable.session is the one for an image at a time. Its worker
    threads sleep between runs instead of spinning: spinning made two concurrent runs of
    Lite2 on 2 cores give 33 images/s instead of 57, and a lone run is no slower
    without it (20 ms)."""
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads or min(4, os.cpu_count() or 1)
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(str(path), options, providers=providers())


def providers():
    """A CUDA GPU where onnxruntime-gpu finds one (README: workers with a GPU), the CPU
    otherwise and as the fallback."""
    available = onnxruntime.get_available_providers()
    return [name for name in ("CUDAExecutionProvider", "CPUExecutionProvider") if name in available]


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
