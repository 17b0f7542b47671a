# Step 1 of issue 9: N CIFAR resnets trained one after another vs one stacked (grouped-conv) network.
# Usage (repo root): /usr/bin/python3 bench/btm_stacked_torch.py N DEPTH CHANNELS SIZE [both|nchw|cl]
# DEVICE=cuda runs it on the GPU (synchronised timings; BATCH=32 by default).
import sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

import os
DEV = torch.device(os.environ.get('DEVICE', 'cpu'))
if DEV.type == 'cpu':
    torch.set_num_threads(2)
else:
    torch.backends.cudnn.benchmark = True
N = int(sys.argv[1]) if len(sys.argv) > 1 else 10
DEPTH = int(sys.argv[2]) if len(sys.argv) > 2 else 20
CIN = int(sys.argv[3]) if len(sys.argv) > 3 else 1
HW = int(sys.argv[4]) if len(sys.argv) > 4 else 28
B = int(os.environ.get('BATCH', '32'))
K = 10
NB = (DEPTH - 2) // 6


class Block(nn.Module):
    def __init__(self, cin, cout, stride, g=1):
        super().__init__()
        self.g = g
        self.conv1 = nn.Conv2d(cin * g, cout * g, 3, stride, 1, bias=False, groups=g)
        self.bn1 = nn.BatchNorm2d(cout * g)
        self.conv2 = nn.Conv2d(cout * g, cout * g, 3, 1, 1, bias=False, groups=g)
        self.bn2 = nn.BatchNorm2d(cout * g)
        self.stride = stride
        self.pad = (cout - cin) // 2
        self.cin = cin

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        idn = x
        if self.stride != 1 or self.pad:
            idn = x[:, :, ::2, ::2]
            if self.g == 1:
                idn = F.pad(idn, (0, 0, 0, 0, self.pad, self.pad))
            else:
                b, _, h, w = idn.shape
                idn = F.pad(idn.reshape(b, self.g, self.cin, h, w), (0, 0, 0, 0, self.pad, self.pad)).reshape(b, -1, h, w)
        return F.relu(out + idn)


class Net(nn.Module):
    def __init__(self, g=1):
        super().__init__()
        self.g = g
        self.conv1 = nn.Conv2d(CIN * g, 16 * g, 3, 1, 1, bias=False, groups=g)
        self.bn1 = nn.BatchNorm2d(16 * g)
        layers = []
        cin = 16
        for s, c in enumerate([16, 32, 64]):
            for i in range(NB):
                layers.append(Block(cin, c, 2 if (s > 0 and i == 0) else 1, g))
                cin = c
        self.layers = nn.Sequential(*layers)
        self.fcw = nn.Parameter(torch.randn(g, K, 64) * 0.1)
        self.fcb = nn.Parameter(torch.zeros(g, K))

    def forward(self, x):
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layers(out)
        f = out.mean((2, 3)).view(x.shape[0], self.g, 64)  # [B, g, 64]
        return torch.einsum('bgf,gkf->bgk', f, self.fcw) + self.fcb  # [B, g, K]


def sgd(params, lr=0.01, m=0.9, wd=5e-4, bufs=None):
    with torch.no_grad():
        for i, p in enumerate(params):
            d = p.grad.add(p, alpha=wd)
            if bufs[i] is None:
                bufs[i] = d.clone()
            else:
                bufs[i].mul_(m).add_(d)
            p.add_(bufs[i], alpha=-lr)


def make_x(g, cl):
    return torch.randn(B, CIN * g, HW, HW)


def step(net, params, bufs, x, y, cl):
    if cl:
        x = x.contiguous(memory_format=torch.channels_last)
    for p in params:
        p.grad = None
    z = net(x)  # [B, g, K]
    loss = sum(F.cross_entropy(z[:, k], y[:, k]) for k in range(z.shape[1])) if z.shape[1] > 1 else F.cross_entropy(z[:, 0], y[:, 0])
    loss.backward()
    sgd(params, bufs=bufs)


def sync():
    if DEV.type == 'cuda':
        torch.cuda.synchronize()


def bench(fn, reps):
    for _ in range(3):
        fn()
    sync()
    t = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t) / reps


def run(cl):
    seq = [Net(1).to(DEV) for _ in range(N)]
    if cl:
        seq = [m.to(memory_format=torch.channels_last) for m in seq]
    sp = [list(m.parameters()) for m in seq]
    sb = [[None] * len(p) for p in sp]
    xs = [torch.randn(B, CIN, HW, HW, device=DEV) for _ in range(N)]
    ys = [torch.randint(0, K, (B, 1), device=DEV) for _ in range(N)]

    def seq_round():
        for k in range(N):
            step(seq[k], sp[k], sb[k], xs[k], ys[k], cl)

    st = Net(N).to(DEV)
    if cl:
        st = st.to(memory_format=torch.channels_last)
    stp = list(st.parameters())
    stb = [None] * len(stp)
    xst = torch.cat(xs, 1)
    yst = torch.cat(ys, 1)

    def st_round():
        step(st, stp, stb, xst, yst, cl)

    reps = 5 if DEV.type == 'cpu' else 30
    ts, tb = [], []
    for _ in range(3):  # alternate
        ts.append(bench(seq_round, reps))
        tb.append(bench(st_round, reps))
    s, b = min(ts), min(tb)
    print(f"{DEV.type} N={N} resnet{DEPTH} {HW}x{HW}x{CIN} B={B} channels_last={cl}: sequential {s*1000:.1f} ms/round, "
          f"stacked(groups={N}) {b*1000:.1f} ms/round, ratio {b/s:.3f}", flush=True)
    return s, b


if __name__ == '__main__':
    mode = sys.argv[5] if len(sys.argv) > 5 else 'both'
    if mode in ('both', 'nchw'):
        run(False)
    if mode in ('both', 'cl'):
        run(True)
