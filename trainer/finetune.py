"""Accurate mode: fine-tune the whole network, starting from the fitted linear head.

As in fast mode, the procedure is measured on part of the images and the final model is
fitted on all of them. First, within part of the time budget, the network is fine-tuned
on the training part of the hold-out; it starts as exactly the fast model (backbone, L2
normalisation, head with its temperature folded in), so both are scored on the same
held-out images. Unless fine-tuning scored clearly worse (by more than one standard
error), the network is then fine-tuned on all images for as many epochs. A hold-out of
a few dozen photos cannot pick the best epoch (on hymenoptera the gain of fine-tuning is
one photo in 153), so it only guards against harm. torch is imported here and nowhere
else on the training path.
"""

import math
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchvision import transforms

from trainer.backbones import base_model
from trainer.files import MODEL_FILE, TORCHSCRIPT_FILE
from trainer.networks import Classifier, export_onnx, export_torchscript, imagenet_network
from trainer.portable import load_rgb

BATCH_SIZE = 16
# Gentle: at 1e-4 the backbone forgets more than a few hundred photos teach it
# (hymenoptera val/ fell from 0.967 to 0.935-0.954; at 1e-5 it rose to 0.974).
BACKBONE_LEARNING_RATE = 1e-5
HEAD_LEARNING_RATE = 1e-4
SELECTION_SHARE = 0.45
WEIGHT_DECAY = 0.01
LABEL_SMOOTHING = 0.1


def freeze_batch_norm(module):
    """A few hundred images in batches of 16 make poor batch statistics: keep
    ImageNet's."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eval()


class Recipe:
    """Images decoded once, the augmentation, and the epochs that train a classifier."""

    def __init__(self, config, paths, labels, on_progress):
        preprocessing = base_model(config.base_model).preprocessing
        normalise = transforms.Normalize(preprocessing.mean, preprocessing.std)
        bicubic = transforms.InterpolationMode.BICUBIC
        self.augment = transforms.Compose(
            [
                transforms.RandomResizedCrop(
                    preprocessing.size, scale=(0.6, 1.0), interpolation=bicubic
                ),
                transforms.RandomHorizontalFlip(),
                transforms.ColorJitter(0.15, 0.15, 0.15),
                transforms.ToTensor(),
                normalise,
            ]
        )
        self.plain = transforms.Compose(
            [transforms.CenterCrop(preprocessing.size), transforms.ToTensor(), normalise]
        )
        self.config = config
        self.labels = labels
        self.generator = np.random.default_rng(config.seed)
        # Decoded once and shrunk to the size the crops are taken from, reporting as it
        # goes: thousands of photos take a while, and silence looks like a dead worker.
        self.images = []
        for path in paths:
            image = transforms.functional.resize(
                load_rgb(path), preprocessing.resize_to, interpolation=bicubic
            )
            self.images.append(image)
            if len(self.images) % 32 == 0:
                on_progress(0.0)

    def classifier(self, weight, bias):
        return Classifier(imagenet_network(self.config.base_model), weight, bias)

    def epochs(self, classifier, indices, planned_steps=None, budget=None, on_step=None):
        """Endless epochs over indices. The cosine schedule spans planned_steps, or the
        steps that fit in budget seconds, estimated from the first step. on_step(step)
        after each step is the caller's heartbeat: an epoch can take minutes."""
        optimiser = torch.optim.AdamW(
            [
                {"params": classifier.features.parameters(), "lr": BACKBONE_LEARNING_RATE},
                {"params": classifier.head.parameters(), "lr": HEAD_LEARNING_RATE},
            ],
            weight_decay=WEIGHT_DECAY,
        )
        loss_of = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
        steps_per_epoch = math.ceil(len(indices) / BATCH_SIZE)
        started = time.monotonic()
        step = 0
        while True:
            classifier.train()
            freeze_batch_norm(classifier)
            order = self.generator.permutation(indices)
            for start in range(0, len(order), BATCH_SIZE):
                batch = order[start : start + BATCH_SIZE]
                pixels = torch.stack([self.augment(self.images[i]) for i in batch])
                loss = loss_of(classifier.logits(pixels), torch.as_tensor(self.labels[batch]))
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                step += 1
                if planned_steps is None:
                    per_step = time.monotonic() - started
                    planned_steps = max(steps_per_epoch, int(budget / per_step))
                fraction = min(1.0, step / planned_steps)
                for group, rate in zip(
                    optimiser.param_groups,
                    (BACKBONE_LEARNING_RATE, HEAD_LEARNING_RATE),
                    strict=True,
                ):
                    group["lr"] = rate * 0.5 * (1 + math.cos(math.pi * fraction))
                if on_step:
                    on_step(step)
            yield

    def probabilities(self, classifier, indices):
        classifier.eval()
        pixels = torch.stack([self.plain(self.images[i]) for i in indices])
        with torch.inference_mode():
            return torch.cat([classifier(batch) for batch in pixels.split(32)]).numpy()


def accuracy(probabilities, labels):
    return float((probabilities.argmax(axis=1) == labels).mean())


def fine_tune(config, paths, labels, train, validation, part_head, all_head, on_progress):
    """(FineTunedNetwork or None, held-out probabilities, report). The networks start
    from part_head (fitted on train) and all_head (fitted on all images). None means
    fine-tuning scored clearly worse than the fast model: the caller keeps all_head."""
    torch.manual_seed(config.seed)
    started = time.monotonic()
    budget = config.time_budget

    def report_progress(done):
        elapsed = time.monotonic() - started
        on_progress(min(1.0, done), max(0.0, budget - elapsed))

    recipe = Recipe(config, paths, labels, report_progress)
    held_out = labels[validation]
    classifier = recipe.classifier(part_head.weight, part_head.bias)
    fast_probabilities = recipe.probabilities(classifier, validation)
    selection_budget = budget * SELECTION_SHARE
    epochs = 0
    selection_started = time.monotonic()

    def selection_progress(step=None):
        elapsed = time.monotonic() - selection_started
        report_progress(SELECTION_SHARE * min(1.0, elapsed / selection_budget))
        return elapsed

    for _ in recipe.epochs(classifier, train, budget=selection_budget, on_step=selection_progress):
        epochs += 1
        elapsed = selection_progress()
        if elapsed * (epochs + 1) / epochs > selection_budget:
            break  # another epoch would not fit
    epoch_seconds = (time.monotonic() - selection_started) / epochs
    tuned_probabilities = recipe.probabilities(classifier, validation)
    fast, tuned = accuracy(fast_probabilities, held_out), accuracy(tuned_probabilities, held_out)
    report = {
        "selection_epochs": epochs,
        "fast_holdout_accuracy": fast,
        "tuned_holdout_accuracy": tuned,
        "final_epochs": 0,
    }
    if tuned < fast - math.sqrt(fast * (1 - fast) / len(held_out)):
        report["seconds"] = round(time.monotonic() - started, 1)
        return None, fast_probabilities, report

    # As many epochs on all images as fit in what is left of the budget, at most as many
    # as were measured.
    seconds_per_epoch = epoch_seconds * len(paths) / len(train)
    left = budget - (time.monotonic() - started)
    final_epochs = max(1, min(epochs, int(left / seconds_per_epoch)))
    final = recipe.classifier(all_head.weight, all_head.bias)
    steps = final_epochs * math.ceil(len(paths) / BATCH_SIZE)
    final_training = recipe.epochs(
        final,
        np.arange(len(paths)),
        planned_steps=steps,
        on_step=lambda step: report_progress(
            SELECTION_SHARE + (1 - SELECTION_SHARE) * step / steps
        ),
    )
    for _ in range(final_epochs):
        next(final_training)
    report["final_epochs"] = final_epochs
    report["seconds"] = round(time.monotonic() - started, 1)
    return FineTunedNetwork(final.eval(), config.base_model), tuned_probabilities, report


@dataclass(frozen=True)
class FineTunedNetwork:
    classifier: Classifier
    base_model: str

    def write(self, out_dir):
        """ONNX (what the server runs) and TorchScript (for the export): written now,
        while the torch weights exist."""
        size = base_model(self.base_model).preprocessing.size
        export_onnx(self.classifier, size, out_dir / MODEL_FILE, "scores")
        export_torchscript(self.classifier, size, out_dir / TORCHSCRIPT_FILE)
