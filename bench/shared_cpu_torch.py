# The busy neighbour of the shared-CPU bench: a PyTorch training loop (a resnet20-shaped CNN, batch 32,
# 28x28x1, torch.set_num_threads(THREADS)) that runs for SECONDS and prints its images/s over the time
# after a 2 s warm-up, as JSON. Usage: /usr/bin/python3 bench/shared_cpu_torch.py SECONDS [THREADS]
import json, sys, time
import torch
import torch.nn as nn
import torch.nn.functional as F

seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 10
torch.set_num_threads(int(sys.argv[2]) if len(sys.argv) > 2 else 2)


class Block(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.c1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.b1 = nn.BatchNorm2d(cout)
        self.c2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.b2 = nn.BatchNorm2d(cout)
        self.short = stride != 1 or cin != cout

    def forward(self, x):
        y = self.b2(self.c2(F.relu(self.b1(self.c1(x)))))
        if self.short:
            x = F.pad(x[:, :, ::2, ::2], (0, 0, 0, 0, (y.shape[1] - x.shape[1]) // 2, (y.shape[1] - x.shape[1]) // 2))
        return F.relu(y + x)


layers, cin = [nn.Conv2d(1, 16, 3, 1, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU()], 16
for s, c in enumerate([16, 32, 64]):
    for i in range(3):
        layers.append(Block(cin, c, 2 if s > 0 and i == 0 else 1))
        cin = c
net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))
opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9)
x, y = torch.randn(32, 1, 28, 28), torch.randint(0, 10, (32,))
start = time.perf_counter()
counted, t0 = 0, None
while time.perf_counter() - start < seconds:
    opt.zero_grad()
    F.cross_entropy(net(x), y).backward()
    opt.step()
    if t0 is None and time.perf_counter() - start >= 2:
        t0 = time.perf_counter()
    elif t0 is not None:
        counted += 32
print(json.dumps({"imagesPerSec": counted / (time.perf_counter() - t0) if t0 and counted else 0}), flush=True)
