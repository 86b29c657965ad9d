"""Accurate mode: fine-tune the whole network, starting from the fitted linear head.

The network starts as exactly the fast model (backbone, L2 normalisation, the head
with its temperature folded in), so the validation score of "epoch 0" is the fast
model's, and the best checkpoint can only match or beat it. torch is imported here
and nowhere else on the training path.
"""

import math
import time

import numpy as np
import torch
from torch import nn
from torchvision import transforms

from trainer.backbones import base_model
from trainer.images import load_rgb
from trainer.networks import Features, export_onnx, imagenet_network

BATCH_SIZE = 16
BACKBONE_LEARNING_RATE = 1e-4
HEAD_LEARNING_RATE = 1e-3
WEIGHT_DECAY = 0.01
LABEL_SMOOTHING = 0.1


class Classifier(nn.Module):
    """Pixels to class scores: features, L2 normalisation, linear head, softmax."""

    def __init__(self, network, weight, bias):
        super().__init__()
        self.features = Features(network)
        self.head = nn.Linear(weight.shape[1], weight.shape[0])
        with torch.no_grad():
            self.head.weight.copy_(torch.as_tensor(weight, dtype=torch.float32))
            self.head.bias.copy_(torch.as_tensor(bias, dtype=torch.float32))

    def logits(self, pixels):
        return self.head(nn.functional.normalize(self.features(pixels), dim=1))

    def forward(self, pixels):
        return torch.softmax(self.logits(pixels), dim=1)


def freeze_batch_norm(module):
    """A few hundred images in batches of 16 make poor batch statistics: keep
    ImageNet's."""
    for layer in module.modules():
        if isinstance(layer, nn.BatchNorm2d):
            layer.eval()


def fine_tune(config, paths, labels, train, validation, weight, bias, on_progress):
    """(classifier, validation probabilities of the best checkpoint, report)."""
    torch.manual_seed(config.seed)
    generator = np.random.default_rng(config.seed)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    preprocessing = base_model(config.base_model).preprocessing
    normalise = transforms.Normalize(preprocessing.mean, preprocessing.std)
    bicubic = transforms.InterpolationMode.BICUBIC
    augment = transforms.Compose(
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
    plain = transforms.Compose(
        [
            transforms.Resize(preprocessing.resize_to, interpolation=bicubic),
            transforms.CenterCrop(preprocessing.size),
            transforms.ToTensor(),
            normalise,
        ]
    )
    # Decoded once and shrunk to the size the crops are taken from, reporting as it
    # goes: thousands of photos take a while, and silence looks like a dead worker.
    images = []
    for path in paths:
        image = load_rgb(path)
        images.append(
            transforms.functional.resize(image, preprocessing.resize_to, interpolation=bicubic)
        )
        if len(images) % 32 == 0:
            on_progress(0.0, config.time_budget)
    validation_pixels = torch.stack([plain(images[i]) for i in validation])
    validation_labels = torch.as_tensor(labels[validation])

    classifier = Classifier(imagenet_network(config.base_model), weight, bias)
    optimiser = torch.optim.AdamW(
        [
            {"params": classifier.features.parameters(), "lr": BACKBONE_LEARNING_RATE},
            {"params": classifier.head.parameters(), "lr": HEAD_LEARNING_RATE},
        ],
        weight_decay=WEIGHT_DECAY,
    )
    loss_of = nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    started = time.monotonic()

    def evaluate():
        classifier.eval()
        with torch.inference_mode():
            probabilities = torch.cat(
                [classifier(batch) for batch in validation_pixels.split(32)]
            ).numpy()
        correct = int((probabilities.argmax(axis=1) == validation_labels.numpy()).sum())
        return correct, probabilities

    best_correct, best_probabilities = evaluate()
    best_state = {k: v.clone() for k, v in classifier.state_dict().items()}
    best_epoch, epochs = 0, 0
    steps_per_epoch = math.ceil(len(train) / BATCH_SIZE)
    planned_steps = None
    step = 0
    while time.monotonic() - started < config.time_budget:
        classifier.train()
        freeze_batch_norm(classifier)
        order = generator.permutation(train)
        for start in range(0, len(order), BATCH_SIZE):
            batch = order[start : start + BATCH_SIZE]
            pixels = torch.stack([augment(images[i]) for i in batch])
            loss = loss_of(classifier.logits(pixels), torch.as_tensor(labels[batch]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            step += 1
            if planned_steps is None:
                # The cosine schedule spans the steps that fit in the time budget,
                # estimated from the first one.
                per_step = time.monotonic() - started
                planned_steps = max(steps_per_epoch, int(config.time_budget / per_step * 0.9))
            for group, base in zip(
                optimiser.param_groups, (BACKBONE_LEARNING_RATE, HEAD_LEARNING_RATE), strict=True
            ):
                group["lr"] = base * 0.5 * (1 + math.cos(math.pi * min(1.0, step / planned_steps)))
            elapsed = time.monotonic() - started
            on_progress(
                min(1.0, elapsed / config.time_budget), max(0.0, config.time_budget - elapsed)
            )
        epochs += 1
        correct, probabilities = evaluate()
        if correct > best_correct:
            best_correct, best_probabilities, best_epoch = correct, probabilities, epochs
            best_state = {k: v.clone() for k, v in classifier.state_dict().items()}
    classifier.load_state_dict(best_state)
    report = {
        "epochs": epochs,
        "best_epoch": best_epoch,
        "seconds": round(time.monotonic() - started, 1),
    }
    return classifier.eval(), best_probabilities, report


def export(classifier, config, path):
    size = base_model(config.base_model).preprocessing.size
    return export_onnx(classifier, size, path, "scores")
