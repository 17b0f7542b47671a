# One configuration per process: seq2 | seq1 | par (2 workers x 1 thread) | stacked ; cl 0/1
# Usage (repo root): /usr/bin/python3 bench/btm_members_torch.py N DEPTH CHANNELS SIZE MODE CL  (reuses btm_stacked_torch.py)
import sys, threading
mode, cl = sys.argv[5], sys.argv[6] == '1'
sys.argv = ['x'] + sys.argv[1:5] + ['none']
exec(open('bench/btm_stacked_torch.py').read().replace("if __name__ == '__main__':", "if False:"))
W = 2
seq = [Net(1) for _ in range(N)]
if cl: seq = [m.to(memory_format=torch.channels_last) for m in seq]
sp = [list(m.parameters()) for m in seq]; sb = [[None]*len(p) for p in sp]
xs = [torch.randn(B, CIN, HW, HW) for _ in range(N)]; ys = [torch.randint(0, K, (B, 1)) for _ in range(N)]
def one(k): step(seq[k], sp[k], sb[k], xs[k], ys[k], cl)
if mode == 'seq1': torch.set_num_threads(1)
if mode in ('seq1', 'seq2'):
    def rnd():
        for k in range(N): one(k)
elif mode == 'par':
    import queue
    qs = [queue.Queue() for _ in range(W)]; done = queue.Queue()
    def worker(w):
        torch.set_num_threads(1)
        while True:
            qs[w].get()
            for k in range(w, N, W): one(k)
            done.put(1)
    for w in range(W): threading.Thread(target=worker, args=(w,), daemon=True).start()
    def rnd():
        for q in qs: q.put(1)
        for _ in range(W): done.get()
else:
    st = Net(N)
    if cl: st = st.to(memory_format=torch.channels_last)
    stp = list(st.parameters()); stb = [None]*len(stp)
    xst = torch.cat(xs, 1); yst = torch.cat(ys, 1)
    def rnd(): step(st, stp, stb, xst, yst, cl)
t = min(bench(rnd, 5) for _ in range(3))
print(f"N={N} resnet{DEPTH} {HW}x{HW}x{CIN} B={B} {mode} cl={int(cl)}: {t*1000:.1f} ms/round", flush=True)
