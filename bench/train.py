"""Training on ../shared/datasets/hymenoptera through the real path, and the peer recipe.

    python bench/train.py [--repeat 3] [--peer-epochs 2] [--models lite0,lite1,lite2]
                          [--accurate-budget 300] [--peer-sets trashnet,corn_leaf] [--peer-only]

For each base model (fast mode): upload train/ over HTTP, press Start training, wait for
the job on the site's real worker, and evaluate the stored model on val/. Printed: the
wall time from the click to ready (created -> finished of the run), validation
accuracy, and the same for a retrain after adding 10 images (taken from val/ and left out
of its evaluation). Then: accurate mode once for the default base model; the default
base model when the uploads were embedded in the background; 10 images per category
(3 draws); and, in this process, the PyTorch transfer-learning tutorial's fine-tune
(SGD 0.001, momentum 0.9, batch 4, StepLR 7/0.1, 25 epochs) on the same backbone,
stopped after --peer-epochs, with the time ratio. Medians over --repeat runs.

Then for each of --peer-sets (by default the other shared sets, on their fixed splits;
"" for none): the default base model's fast mode through the same path, cold (the
photos embedded by the training), scored on the test split, and the peer recipe on the
same photos, with the same time ratio.
"""

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

from features import DATASETS, fixed_split
from ingest import Site, start_site, stop_site
from quality import by_class

from trainer.backbones import DEFAULT_BASE_MODEL
from trainer.choices import DEFAULT_TIME_BUDGET, TIME_BUDGETS

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATASET = ROOT.parent / "shared" / "datasets" / "hymenoptera"
CATEGORIES = ("ants", "bees")


def files_of(split):
    return {name: sorted((DATASET / split / name).iterdir()) for name in CATEGORIES}


def cold_and_retrain(site, base_model, train, val):
    browser, task, categories = site.new_task(CATEGORIES)
    site.upload(browser, task, categories, train)
    seconds, run = site.train(browser, task, base_model)
    accuracy = site.accuracy(task, run, val)
    extra = {name: paths[:5] for name, paths in val.items()}
    rest = {name: paths[5:] for name, paths in val.items()}
    site.upload(browser, task, categories, extra)
    retrain_seconds, retrain_run = site.train(browser, task, base_model)
    return seconds, accuracy, retrain_seconds, site.accuracy(task, retrain_run, rest)


def accurate(site, base_model, train, val, time_budget):
    browser, task, categories = site.new_task(CATEGORIES)
    site.upload(browser, task, categories, train)
    seconds, run = site.train(browser, task, base_model, "accurate", time_budget)
    return seconds, site.accuracy(task, run, val)


def warm(site, base_model, train, val):
    browser, task, categories = site.new_task(CATEGORIES)
    site.upload(browser, task, categories, train)
    total = sum(len(paths) for paths in train.values())
    while site.embedded(task, base_model) < total:
        time.sleep(0.2)
    seconds, run = site.train(browser, task, base_model)
    return seconds, site.accuracy(task, run, val)


def few_shot(site, base_model, train, val, per_category, seed):
    rng = random.Random(seed)
    chosen = {name: rng.sample(paths, per_category) for name, paths in train.items()}
    browser, task, categories = site.new_task(CATEGORIES)
    site.upload(browser, task, categories, chosen)
    _, run = site.train(browser, task, base_model)
    return site.accuracy(task, run, val)


def peer_recipe(base_model, train, val, epochs):
    """The PyTorch tutorial's fine-tune on the same backbone, on {class: [path]} of
    train and val: (seconds per epoch, validation accuracy after the given epochs)."""
    import torch
    from torch import nn
    from torchvision import transforms

    from trainer.backbones import base_model as describe
    from trainer.networks import imagenet_network
    from trainer.portable import load_rgb

    torch.manual_seed(0)
    prep = describe(base_model).preprocessing
    normalise = transforms.Normalize(prep.mean, prep.std)
    bicubic = transforms.InterpolationMode.BICUBIC
    train_transform = transforms.Compose(
        [
            transforms.RandomResizedCrop(prep.size, interpolation=bicubic),
            transforms.RandomHorizontalFlip(),
            transforms.ToTensor(),
            normalise,
        ]
    )
    val_transform = transforms.Compose(
        [
            transforms.Resize(prep.resize_to, interpolation=bicubic),
            transforms.CenterCrop(prep.size),
            transforms.ToTensor(),
            normalise,
        ]
    )
    classes = sorted(train)
    train_items = [(load_rgb(p), i) for i, name in enumerate(classes) for p in train[name]]
    val_items = [(load_rgb(p), i) for i, name in enumerate(classes) for p in val[name]]
    network = imagenet_network(base_model)
    network.reset_classifier(len(classes))
    optimiser = torch.optim.SGD(network.parameters(), lr=0.001, momentum=0.9)
    schedule = torch.optim.lr_scheduler.StepLR(optimiser, step_size=7, gamma=0.1)
    loss = nn.CrossEntropyLoss()
    started = time.perf_counter()
    for _ in range(epochs):
        network.train()
        random.Random(len(train_items)).shuffle(train_items)
        for start in range(0, len(train_items), 4):
            batch = train_items[start : start + 4]
            inputs = torch.stack([train_transform(image) for image, _ in batch])
            labels = torch.tensor([label for _, label in batch])
            optimiser.zero_grad()
            loss(network(inputs), labels).backward()
            optimiser.step()
        schedule.step()
    per_epoch = (time.perf_counter() - started) / epochs
    network.eval()
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(val_items), 32):
            batch = val_items[start : start + 32]
            inputs = torch.stack([val_transform(image) for image, _ in batch])
            predicted = network(inputs).argmax(dim=1)
            correct += sum(int(p == label) for p, (_, label) in zip(predicted, batch, strict=True))
    return per_epoch, correct / len(val_items)


def median(values):
    return statistics.median(values)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--peer-epochs", type=int, default=2)
    parser.add_argument("--models", default="lite0,lite1,lite2")
    parser.add_argument(
        "--accurate-budget", type=int, default=DEFAULT_TIME_BUDGET, choices=sorted(TIME_BUDGETS)
    )
    parser.add_argument("--peer-sets", default="trashnet,corn_leaf")
    parser.add_argument(
        "--peer-only", action="store_true", help="only fast mode and the peer on --peer-sets"
    )
    args = parser.parse_args()
    if not DATASET.exists():
        sys.exit(f"no dataset at {DATASET}")
    default = DEFAULT_BASE_MODEL
    if not args.peer_only:
        on_hymenoptera(args, default)
    if args.peer_sets:
        peer_on_other_sets(default, args.peer_sets.split(","), args.peer_epochs)


def on_hymenoptera(args, default):
    train, val = files_of("train"), files_of("val")
    cold = {}

    process, url, var = start_site(port=8766, VIZE_EMBED_ON_UPLOAD="0")
    try:
        site = Site(url, var)
        for base_model in args.models.split(","):
            runs = [cold_and_retrain(site, base_model, train, val) for _ in range(args.repeat)]
            columns = zip(*runs, strict=True)
            seconds, accuracy, retrain, retrain_accuracy = (median(column) for column in columns)
            cold[base_model] = seconds
            print(
                f"{base_model} fast, 245 images: click to ready {seconds:.1f} s "
                f"(runs {', '.join(f'{r[0]:.1f}' for r in runs)}), val accuracy {accuracy:.3f}; "
                f"retrain after adding 10: {retrain:.1f} s, val accuracy {retrain_accuracy:.3f}"
            )
        seconds, accuracy = accurate(site, default, train, val, args.accurate_budget)
        print(
            f"{default} accurate ({args.accurate_budget} s budget), 245 images: click to ready "
            f"{seconds:.1f} s, val accuracy {accuracy:.3f}"
        )
    finally:
        stop_site(process)

    process, url, var = start_site(port=8767, VIZE_EMBED_ON_UPLOAD="1")
    try:
        site = Site(url, var)
        runs = [warm(site, default, train, val) for _ in range(args.repeat)]
        listed = ", ".join(f"{r[0]:.1f}" for r in runs)
        print(
            f"{default} fast, embedded in the background during upload: click to ready "
            f"{median(r[0] for r in runs):.1f} s (runs {listed}), "
            f"val accuracy {median(r[1] for r in runs):.3f}"
        )
        draws = [few_shot(site, default, train, val, 10, seed) for seed in range(3)]
        listed = ", ".join(f"{d:.3f}" for d in draws)
        print(
            f"{default} fast, 10 images per category, 3 draws: val accuracy "
            f"{statistics.mean(draws):.3f} +- {statistics.stdev(draws):.3f} ({listed})"
        )
    finally:
        stop_site(process)

    print_peer("hymenoptera", default, train, val, args.peer_epochs, cold.get(default))


def peer_on_other_sets(base_model, names, epochs):
    """Fast mode, cold, and the peer recipe on each named shared set's fixed split."""
    process, url, var = start_site(port=8769, VIZE_EMBED_ON_UPLOAD="0")
    try:
        site = Site(url, var)
        for name in names:
            train, test = (by_class(part) for part in fixed_split(DATASETS / name))
            browser, task, categories = site.new_task(sorted(train), name)
            site.upload(browser, task, categories, train)
            seconds, run = site.train(browser, task, base_model)
            site.wait_packaged(run)
            count = sum(map(len, train.values()))
            print(
                f"{base_model} fast, {name} ({count} photos, embedded by the training): click "
                f"to ready {seconds:.1f} s, test accuracy {site.accuracy(task, run, test):.3f}",
                flush=True,
            )
            print_peer(name, base_model, train, test, epochs, seconds)
    finally:
        stop_site(process)


def print_peer(name, base_model, train, test, epochs, fast_seconds):
    per_epoch, peer_accuracy = peer_recipe(base_model, train, test, epochs)
    full = per_epoch * 25
    ratio = full / (fast_seconds or float("nan"))
    print(
        f"peer recipe on {name} (PyTorch tutorial fine-tune, {base_model}): {per_epoch:.1f} s "
        f"per epoch, held-out accuracy {peer_accuracy:.3f} after {epochs} epochs; 25 epochs "
        f"would take ~{full:.0f} s, {ratio:.0f} times the fast mode's click to ready",
        flush=True,
    )


if __name__ == "__main__":
    main()
