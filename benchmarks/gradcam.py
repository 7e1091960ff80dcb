"""Grad-CAM throughput, measured side by side in one run: batched maps vs a per-image loop.

The per-image loop is the keras.io Grad-CAM example's code, adapted to the nested backbone: for every
image, cut a gradient model out of the classifier and run one eager forward/backward pass. Ours cuts it
once, compiles the pass, and runs batches of 32.
Same model (MobileNetV2, weights=None), same images, same maps (checked). Prints images/s and the ratio.
Run: python benchmarks/gradcam.py [--images 64] [--size 224] [--alpha 1.0]
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import keras
import tensorflow as tf

from study.config import ModelConfig
from study.explain.gradcam import GradCam
from study.search.hypermodel import LOGIT_LAYER, build_model

BATCH = 32


def keras_io_heatmap(model: keras.Model, film: np.ndarray, explain_positive: bool) -> np.ndarray:
    """keras.io/examples/vision/grad_cam's make_gradcam_heatmap, one image, eager, gradient model rebuilt."""
    backbone = next(layer for layer in model.layers if isinstance(layer, keras.Model))
    grad_model = keras.Model(backbone.inputs, [backbone.get_layer("out_relu").output, backbone.output])
    scaled = model.get_layer("mobilenet_scale")(model.get_layer("to_float")(film[None]))
    rgb = model.get_layer("gray_to_rgb")([scaled, scaled, scaled])
    with tf.GradientTape() as tape:
        conv_output, final = grad_model(rgb)
        logit = model.get_layer(LOGIT_LAYER)(model.get_layer("pool")(final))[:, 0]
        target = logit if explain_positive else -logit
    grads = tape.gradient(target, conv_output)
    pooled = tf.reduce_mean(grads, axis=(0, 1, 2))
    heatmap = tf.nn.relu(tf.reduce_sum(conv_output[0] * pooled, axis=-1))
    return (heatmap / (tf.reduce_max(heatmap) + 1e-8)).numpy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--alpha", type=float, default=1.0)
    args = parser.parse_args()
    model_cfg = ModelConfig(
        weights="none",
        alpha=args.alpha,
        bn_momentum=0.9,
        horizontal_flip=False,
        precision="float32",
        xla="off",
        require_gpu=False,
    )
    model = build_model(args.size, 0.0, 0.2, -1, 1e-3, model_cfg)
    films = np.random.default_rng(0).integers(0, 255, (args.images, args.size, args.size, 1), dtype=np.uint8)
    explain = np.arange(args.images) % 2 == 0
    keras_io_heatmap(model, films[0], True)  # warm-up for both: first-call costs are not throughput
    GradCam(model, "out_relu").maps(films[:BATCH], explain[:BATCH])

    started = time.perf_counter()
    looped = np.stack([keras_io_heatmap(model, films[i], bool(explain[i])) for i in range(args.images)])
    loop_rate = args.images / (time.perf_counter() - started)

    started = time.perf_counter()
    cam = GradCam(model, "out_relu")
    batched = np.concatenate(
        [cam.maps(films[i : i + BATCH], explain[i : i + BATCH]) for i in range(0, args.images, BATCH)]
    )
    batch_rate = args.images / (time.perf_counter() - started)

    same = np.allclose(looped, batched, atol=1e-4)
    print(f"{args.images} images at {args.size} px, MobileNetV2 alpha {args.alpha}, {os.cpu_count()} CPUs")
    print(f"per-image loop (keras.io pattern): {loop_rate:8.1f} images/s")
    print(f"batched, batch {BATCH}:              {batch_rate:8.1f} images/s")
    print(f"batched / per-image: {batch_rate / loop_rate:.1f}x (maps identical: {same})")


if __name__ == "__main__":
    main()
