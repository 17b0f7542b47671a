"""PyTorch eager peer for `npm run bench` (run by bench/native-vs-peers.ts with Debian's python3-torch).

The same CIFAR ResNet as native/models/resnet.cc (3x3 stem of 16 channels, 3 stages of 16/32/64 BasicBlocks,
option-A shortcuts: strided subsample + zero channel padding, global average pool, fc; the module of
test/interop/cifar_resnet.py), the same
per-step work as Model.trainEpoch (gather a uint8 batch by index, to float /255, per-channel
normalisation, forward, cross-entropy, backward, torch.optim.SGD momentum 0.9 wd 5e-4).

Batch mode reads one JSON request on stdin, writes one JSON object on stdout (see serve() for --serve):
  {"threads": T, "train": [case...], "eval": [case...], "matmul": {"n": N, "reps": R} | null,
   "profile": case | null}
  case = {"arch", "channels", "size", "batch", "steps", "warmup", "reps", "classes", "channels_last"?,
          "device"?: "cpu" | "cuda", "amp"?: "none" | "bf16" | "fp16", "cudnn_benchmark"?}
  (channels_last: model and batches in torch.channels_last; device "cuda": data, model and batches on the
  GPU as native keeps them, autocast for "amp" (fp16 with torch.cuda.amp.GradScaler), each run ends with
  torch.cuda.synchronize(); the ImageNet-style archs (resnet18/34/50/...) are torchvision's own models)
"""
import contextlib
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

# The CIFAR ResNet in PyTorch has one home, the README's code in test/interop/cifar_resnet.py (its interop
# test checks it against btm-node's logits); the peer runs that very module.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "interop"))
from cifar_resnet import CifarResNet  # noqa: E402

DEPTHS = {"resnet8", "resnet20", "resnet32", "resnet56", "resnet110"}


def device_of(case):
    return torch.device(case.get("device", "cpu"))


def make_model(case):
    if case["arch"] in DEPTHS:
        return CifarResNet(int(case["arch"][len("resnet"):]), case["classes"], case["channels"])
    import torchvision  # ImageNet-style archs: torchvision's models, 3 input channels

    if case["channels"] != 3:
        raise ValueError(f"{case['arch']}: torchvision's model takes 3 channels, not {case['channels']}")
    return torchvision.models.__dict__[case["arch"]](num_classes=case["classes"])


def setup(case):
    torch.manual_seed(0)
    dev = device_of(case)
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = bool(case.get("cudnn_benchmark", False))
    n = case["batch"] * case["steps"]
    c, s = case["channels"], case["size"]
    images = torch.randint(0, 256, (n, c, s, s), dtype=torch.uint8).to(dev)
    labels = torch.randint(0, case["classes"], (n,)).to(dev)
    model = make_model(case).to(dev, memory_format=layout(case))
    mean = torch.full((1, c, 1, 1), 0.5, device=dev)
    std = torch.full((1, c, 1, 1), 0.25, device=dev)
    return model, images, labels, mean, std


def autocast(case):
    amp = case.get("amp", "none")
    if amp == "none" or device_of(case).type != "cuda":
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=torch.bfloat16 if amp == "bf16" else torch.float16)


def synchronize(case):
    if device_of(case).type == "cuda":
        torch.cuda.synchronize()


def layout(case):
    return torch.channels_last if case.get("channels_last") else torch.contiguous_format


def batches(case):
    order = torch.randperm(case["batch"] * case["steps"], device=device_of(case))
    return [order[i : i + case["batch"]] for i in range(0, len(order), case["batch"])]


def to_input(images, idx, mean, std, memory_format=torch.contiguous_format):
    x = images.index_select(0, idx).float().div_(255).sub_(mean).div_(std)
    return x.contiguous(memory_format=memory_format)


def timed(run, case):
    """Images/s of each timed run (one run = `steps` batches), after `warmup` untimed runs."""
    for _ in range(case["warmup"]):
        run()
    rates = []
    for _ in range(case["reps"]):
        t = time.perf_counter()
        run()
        rates.append(case["batch"] * case["steps"] / (time.perf_counter() - t))
    return {**case, "rates": rates, "median": statistics.median(rates)}


def train_runner(case):
    """run() trains `steps` batches; also returns what profile_step needs."""
    model, images, labels, mean, std = setup(case)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    model.train()
    scaler = torch.cuda.amp.GradScaler() if case.get("amp") == "fp16" and device_of(case).type == "cuda" else None

    def step(idx):
        x = to_input(images, idx, mean, std, layout(case))
        with autocast(case):
            loss = F.cross_entropy(model(x), labels.index_select(0, idx))
        opt.zero_grad(set_to_none=True)  # what native does: grads dropped, not zeroed
        if scaler is None:
            loss.backward()
            opt.step()
        else:
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()

    def run():
        for idx in batches(case):
            step(idx)
        synchronize(case)

    return run, (model, images, labels, mean, std, opt)


def eval_runner(case):
    model, images, _, mean, std = setup(case)
    model.eval()

    def run():
        with torch.no_grad(), autocast(case):
            for idx in batches(case):
                model(to_input(images, idx, mean, std, layout(case))).argmax(1)
        synchronize(case)

    return run, None


RUNNERS = {"train": train_runner, "eval": eval_runner}


CATEGORIES = [  # (category, substrings of aten op names), first match wins; self CPU time
    ("conv", ("conv", "mkldnn_convolution")),
    ("batchnorm", ("batch_norm",)),
    ("relu", ("relu", "threshold")),
    ("shortcut (slice+pad)", ("constant_pad", "slice", "pad")),
    ("pool+fc+loss", ("adaptive_avg_pool", "mean", "addmm", "mm", "log_softmax", "nll_loss", "linear")),
]


def profile_step(case, model, images, labels, mean, std, opt):
    """Where one train step's time goes: phases by wall clock (mean over steps), ops by profiler self time."""
    from torch.autograd import profiler

    idxs = batches(case)
    phases = {"data": 0.0, "forward": 0.0, "backward": 0.0, "optimizer": 0.0}

    def step(idx, clock):
        t0 = time.perf_counter()
        x = to_input(images, idx, mean, std)
        y = labels.index_select(0, idx)
        t1 = time.perf_counter()
        loss = F.cross_entropy(model(x), y)
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if clock:
            for k, dt in zip(phases, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
                phases[k] += dt

    for idx in idxs[: case["warmup"]]:
        step(idx, False)
    for idx in idxs:
        step(idx, True)
    total = sum(phases.values())
    with profiler.profile() as prof:
        with profiler.record_function("optimizer_scope"):
            pass
        step(idxs[0], False)
    ops = {}
    for e in prof.key_averages():  # self times can come out slightly negative for view ops: count them as 0
        ops[e.key] = ops.get(e.key, 0) + max(0, e.self_cpu_time_total)
    ops_total = sum(ops.values())
    cats = {name: 0.0 for name, _ in CATEGORIES}
    cats["optimizer (sgd)"] = 0.0
    cats["other"] = 0.0
    for key, us in ops.items():
        k = key.lower()
        name = next((n for n, subs in CATEGORIES if any(s in k for s in subs)), None)
        if name is None:
            name = "optimizer (sgd)" if k in ("aten::add_", "aten::mul_", "aten::add", "aten::clone") else "other"
        cats[name] += us
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:12]
    return {
        **case,
        "step_ms": 1e3 * total / len(idxs),
        "phases": {k: v / total for k, v in phases.items()},
        "ops": {k: v / ops_total for k, v in cats.items()},
        "top_ops": [{"op": k, "share": v / ops_total} for k, v in top],
    }


def matmul_peak(n, reps):
    """Best GFLOP/s of an n x n x n float32 matmul (2 n^3 FLOPs) through libtorch, two ways: torch.mm
    (whatever BLAS libtorch links: Debian's is the netlib reference BLAS) and oneDNN's inner product
    (the library libtorch's CPU convolutions run on). The peak is the faster of the two."""
    a, b = torch.randn(n, n), torch.randn(n, n)

    def best(f, reps):
        f()
        t_best = float("inf")
        for _ in range(reps):
            t = time.perf_counter()
            f()
            t_best = min(t_best, time.perf_counter() - t)
        return 2.0 * n**3 / t_best

    out = {"n": n, "blas_mm": best(lambda: torch.mm(a, b), 1)}  # ~2 s a call with the reference BLAS
    try:
        am, bm = a.to_mkldnn(), b.to_mkldnn()
        out["onednn"] = best(lambda: torch._C._nn.mkldnn_linear(am, bm, None), reps)
    except (AttributeError, RuntimeError) as e:
        out["onednn_error"] = str(e)
    out["flops"] = max(out["blas_mm"], out.get("onednn", 0.0))
    out["via"] = "onednn" if out.get("onednn", 0.0) > out["blas_mm"] else "blas_mm"
    return out


def serve():
    """--serve: one JSON request per stdin line, one JSON reply per stdout line, so the caller can
    alternate single timed runs with its own (both then see the same machine state):
      {"op": "hello", "threads": T}                      -> {"torch", "threads"}
      {"op": "prepare", "id", "mode": "train"|"eval", "case"} builds, runs case["warmup"] runs -> {}
      {"op": "run", "id"}                                 -> {"seconds": one run of case["steps"] batches}
      {"op": "close", "id"}                               -> {}"""
    runs = {}
    for line in sys.stdin:
        req = json.loads(line)
        op, reply = req["op"], {}
        if op == "hello":
            torch.set_num_threads(req["threads"])
            reply = {"torch": torch.__version__, "threads": torch.get_num_threads()}
        elif op == "prepare":
            run, _ = RUNNERS[req["mode"]](req["case"])
            for _ in range(req["case"]["warmup"]):
                run()
            runs[req["id"]] = run
        elif op == "run":
            t = time.perf_counter()
            runs[req["id"]]()
            reply = {"seconds": time.perf_counter() - t}
        elif op == "close":
            runs.pop(req["id"], None)
        print(json.dumps(reply), flush=True)


def main():
    if "--serve" in sys.argv:
        return serve()
    req = json.load(sys.stdin)
    torch.set_num_threads(req["threads"])
    out = {
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "python": sys.version.split()[0],
        "train": [timed(train_runner(c)[0], c) for c in req.get("train", [])],
        "eval": [timed(eval_runner(c)[0], c) for c in req.get("eval", [])],
    }
    if req.get("matmul"):
        out["matmul"] = matmul_peak(req["matmul"]["n"], req["matmul"]["reps"])
    if req.get("profile"):
        out["profile"] = profile_step(req["profile"], *train_runner(req["profile"])[1])
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
