#!/usr/bin/env python3
"""The PyTorch side of `pnpm bench:peer` (bench/src/peer.ts): builds the same networks as our engine times and
times their train step and eval, one sample per request, so that the two alternate in one run.

A long-lived process: one JSON object per line on stdin, one answer per line on stdout (nothing else is ever
written there; diagnostics go to stderr). The first line it writes is {"ready": true, "torch": version} or,
when torch cannot be imported, {"ready": false, "reason": ...} before it exits.

Requests (each answer echoes "id"; a failed request answers {"id", "error"}):
  {"op": "build", "name", "net": "resnet20", "factored": {conv name: inner width}}
      CIFAR ResNet-20 with option B shortcuts, as @decompose/resnet builds it; every conv named in
      "factored" becomes a k×k conv to that many filters then a 1×1 conv to the original outputs (the naive
      basis layer, and the weight-SVD pair). Answers {"params": trainable parameters, "convs": conv names}.
  {"op": "build", "name", "net": "mobilenet", "stem": 32, "stages": [[t, c, n, s], ...], "classes": 10}
      The MobileNetV2-style network of bench/src/mobilenet.ts, from the stage table it sends.
  {"op": "time", "name", "mode": "train" | "eval", "batch", "threads", "min_ms"}
      Calls the step until min_ms of wall time have passed (at least once) with torch.set_num_threads(threads).
      train: forward, cross-entropy, backward, SGD update (lr 0.01); eval: model.eval() under
      torch.inference_mode(). Answers {"calls", "ms": wall, "cpu_ms": process CPU time, all threads}.
  {"op": "quit"}
"""

import json
import sys
import time

try:
    import torch
    import torch.nn.functional as F
    from torch import nn
except ImportError as error:
    print(json.dumps({"ready": False, "reason": f"cannot import torch ({error})"}), flush=True)
    sys.exit(0)

IMAGE_SIZE = 32
NUM_CLASSES = 10
LEARNING_RATE = 0.01


def conv(name, convs, factored, c_in, c_out, kernel, stride, groups=1):
    """A bias-free conv padded as PyTorch's k//2, or the pair that replaces it when `factored` names it."""
    convs.append(name)
    padding = kernel // 2
    width = factored.pop(name, None)
    if width is None:
        return nn.Conv2d(c_in, c_out, kernel, stride, padding, groups=groups, bias=False)
    return nn.Sequential(
        nn.Conv2d(c_in, width, kernel, stride, padding, bias=False),
        nn.Conv2d(width, c_out, 1, bias=False),
    )


class BasicBlock(nn.Module):
    def __init__(self, prefix, convs, factored, c_in, c_out, stride):
        super().__init__()
        self.conv1 = conv(f"{prefix}.conv1", convs, factored, c_in, c_out, 3, stride)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = conv(f"{prefix}.conv2", convs, factored, c_out, c_out, 3, 1)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Identity()
        if stride != 1 or c_in != c_out:  # option B: a 1×1 projection and its BatchNorm
            self.shortcut = nn.Sequential(
                conv(f"{prefix}.shortcut.conv", convs, factored, c_in, c_out, 1, stride), nn.BatchNorm2d(c_out)
            )

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.shortcut(x))


class CifarResNet20(nn.Module):
    """Stem 3×3/16, three stages of 16/32/64 channels with three basic blocks each, average pool, linear."""

    def __init__(self, convs, factored):
        super().__init__()
        self.stem = nn.Sequential(conv("stem.conv", convs, factored, 3, 16, 3, 1), nn.BatchNorm2d(16), nn.ReLU())
        blocks = []
        c_in = 16
        for s, channels in enumerate([16, 32, 64]):
            for b in range(3):
                stride = 2 if s > 0 and b == 0 else 1
                blocks.append(BasicBlock(f"stage{s + 1}.block{b + 1}", convs, factored, c_in, channels, stride))
                c_in = channels
        self.blocks = nn.Sequential(*blocks)
        self.fc = nn.Linear(64, NUM_CLASSES)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.blocks(self.stem(x)), 1).flatten(1))


class InvertedResidual(nn.Module):
    def __init__(self, c_in, c_out, expansion, stride):
        super().__init__()
        hidden = c_in * expansion
        layers = []
        if expansion != 1:
            layers += [nn.Conv2d(c_in, hidden, 1, bias=False), nn.BatchNorm2d(hidden), nn.ReLU6()]
        layers += [
            nn.Conv2d(hidden, hidden, 3, stride, 1, groups=hidden, bias=False),
            nn.BatchNorm2d(hidden),
            nn.ReLU6(),
            nn.Conv2d(hidden, c_out, 1, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x):
        y = self.body(x)
        return x + y if self.residual else y


class MobileNetStyle(nn.Module):
    def __init__(self, stem, stages, classes):
        super().__init__()
        layers = [nn.Conv2d(3, stem, 3, 1, 1, bias=False), nn.BatchNorm2d(stem), nn.ReLU6()]
        channels = stem
        for t, c, n, s in stages:
            for i in range(n):
                layers.append(InvertedResidual(channels, c, t, s if i == 0 else 1))
                channels = c
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, classes)

    def forward(self, x):
        return self.fc(F.adaptive_avg_pool2d(self.features(x), 1).flatten(1))


def synthetic_batch(count):
    """The images our side times (sin(i·12.9898)·0.5 over NHWC), as NCHW, and labels i mod 10."""
    values = torch.arange(count * IMAGE_SIZE * IMAGE_SIZE * 3, dtype=torch.float64).mul(12.9898).sin().mul(0.5)
    images = values.float().reshape(count, IMAGE_SIZE, IMAGE_SIZE, 3).permute(0, 3, 1, 2).contiguous()
    return images, torch.arange(count) % NUM_CLASSES


class Reference:
    def __init__(self):
        self.models = {}
        self.batches = {}

    def build(self, request):
        convs = []
        if request["net"] == "resnet20":
            factored = dict(request.get("factored", {}))
            model = CifarResNet20(convs, factored)
            if factored:
                raise ValueError(f"no conv named {sorted(factored)} in ResNet-20 (convs: {convs})")
        elif request["net"] == "mobilenet":
            model = MobileNetStyle(request["stem"], request["stages"], request["classes"])
        else:
            raise ValueError(f"unknown net {request['net']!r}: resnet20 or mobilenet")
        optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE)
        self.models[request["name"]] = (model, optimizer)
        params = sum(p.numel() for p in model.parameters() if p.requires_grad)
        return {"params": params, "convs": convs}

    def step(self, request):
        model, optimizer = self.models[request["name"]]
        batch = request["batch"]
        if batch not in self.batches:
            self.batches[batch] = synthetic_batch(batch)
        images, labels = self.batches[batch]
        if request["mode"] == "train":
            model.train()

            def train():
                optimizer.zero_grad(set_to_none=True)
                F.cross_entropy(model(images), labels).backward()
                optimizer.step()

            return train
        if request["mode"] == "eval":
            model.eval()

            def evaluate():
                with torch.inference_mode():
                    model(images)

            return evaluate
        raise ValueError(f"unknown mode {request['mode']!r}: train or eval")

    def time(self, request):
        run = self.step(request)
        torch.set_num_threads(request["threads"])
        min_ms = request["min_ms"]
        calls = 0
        cpu_start = time.process_time()
        start = time.perf_counter()
        while True:
            run()
            calls += 1
            elapsed = (time.perf_counter() - start) * 1000
            if elapsed >= min_ms:
                break
        return {"calls": calls, "ms": elapsed, "cpu_ms": (time.process_time() - cpu_start) * 1000}


def main():
    torch.manual_seed(0)
    torch.set_num_interop_threads(1)  # nothing here runs ops concurrently; intra-op threads are set per request
    reference = Reference()
    print(json.dumps({"ready": True, "torch": torch.__version__}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        op = request.get("op")
        if op == "quit":
            break
        try:
            if op == "build":
                answer = reference.build(request)
            elif op == "time":
                answer = reference.time(request)
            else:
                raise ValueError(f"unknown op {op!r}: build, time or quit")
        except Exception as error:  # the caller reports it and stops; this process stays usable
            answer = {"error": f"{type(error).__name__}: {error}"}
        print(json.dumps({"id": request.get("id"), **answer}), flush=True)


if __name__ == "__main__":
    main()
