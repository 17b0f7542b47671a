#include "runtime/threads.h"

#include <torch/torch.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

#if defined(__linux__)
#include <sched.h>
#endif

namespace btm {

namespace {
std::atomic<int> g_threads{0};  // the user's count, or the most an adaptive count may use
std::atomic<bool> g_adaptive{false};
std::atomic<int> g_current{0};  // adaptive: the count in use

// Adaptive threads (Linux): two processes that each run OpenMP on every core collapse (each team spins
// and waits for workers the other process has preempted: 0.13-0.19x of the speed alone, measured beside
// a 2-thread PyTorch loop on 2 cores). So before a CPU job, at most every 0.5 s, the CPU time of the
// cores this process may run on is read from /proc/stat, this process's own from /proc/self/stat, and
// the difference says how many cores other processes keep busy (a running average); the count becomes
// the most minus those cores (rounded down after adding 0.3, at least 1). Alone it stays the most.
// Niced processes count too: a team of OpenMP threads stalls at every barrier where one of its threads
// waits for a core, whoever holds it (beside a nice-19 training process that took about one core, a
// 2-thread btm-node ran 8x slower than alone). Where /proc cannot be read the count stays fixed.
struct CpuSample {
  bool ok = false;
  std::chrono::steady_clock::time_point at;
  double total = 0, busy = 0, self = 0;  // clock ticks
  int cpus = 0;
};

CpuSample sample() {
  CpuSample s;
#if defined(__linux__)
  s.at = std::chrono::steady_clock::now();
  cpu_set_t allowed;
  CPU_ZERO(&allowed);
  if (sched_getaffinity(0, sizeof(allowed), &allowed) != 0) return s;
  std::ifstream stat("/proc/stat");
  std::string line;
  while (std::getline(stat, line)) {
    if (line.rfind("cpu", 0) != 0) break;
    if (line.size() < 4 || line[3] < '0' || line[3] > '9') continue;  // the "cpu " total line
    std::istringstream in(line.substr(3));
    int id = -1;
    double v[8] = {0, 0, 0, 0, 0, 0, 0, 0};  // user nice system idle iowait irq softirq steal
    in >> id;
    for (double& x : v) in >> x;
    if (id < 0 || id >= CPU_SETSIZE || !CPU_ISSET(id, &allowed)) continue;
    ++s.cpus;
    s.total += v[0] + v[1] + v[2] + v[3] + v[4] + v[5] + v[6] + v[7];
    s.busy += v[0] + v[1] + v[2] + v[5] + v[6];
  }
  std::ifstream self("/proc/self/stat");
  std::getline(self, line);
  const auto close = line.rfind(')');  // the command name (field 2) may hold spaces
  if (s.cpus == 0 || close == std::string::npos) return s;
  std::istringstream rest(line.substr(close + 1));
  std::string field;
  for (int f = 3; f <= 13; ++f) rest >> field;  // state .. cmajflt
  double utime = 0, stime = 0;
  if (!(rest >> utime >> stime)) return s;
  s.self = utime + stime;
  s.ok = true;
#endif
  return s;
}

std::mutex g_adapt_mutex;
CpuSample g_last;
double g_others = -1;  // running average of the cores others keep busy; < 0 before the first measure

// `restart`: forget the past and take a fresh baseline (set_threads)
void adapt(bool restart = false) {
  std::lock_guard<std::mutex> lock(g_adapt_mutex);
  if (restart) g_last = CpuSample(), g_others = -1;
  const int most = g_threads;
  if (g_last.ok && std::chrono::steady_clock::now() - g_last.at < std::chrono::milliseconds(500)) return;
  const CpuSample s = sample();
  if (!s.ok) return;
  auto& last = g_last;
  auto& others = g_others;
  if (last.ok && s.total > last.total && s.cpus == last.cpus) {
    const double busy = s.busy - last.busy;
    const double now = std::max(0.0, busy - (s.self - last.self)) / (s.total - last.total) * s.cpus;
    others = others < 0 ? now : 0.5 * others + 0.5 * now;
    const int want = most - static_cast<int>(std::floor(others + 0.3));
    g_current = std::max(1, std::min(most, want));
  }
  last = s;
}
}  // namespace

void set_threads(int n, bool adaptive) {
  g_threads = n;
  g_current = n;
  g_adaptive = adaptive;
  if (adaptive) adapt(/*restart=*/true);  // the baseline: the first job already sees the load since now
  // With OpenMP every thread that runs a parallel region owns a team of workers, and once more
  // threads are managed than there are cores libgomp stops spinning and every region pays for futex
  // wake-ups (a small training step ran 5x slower). The intra-op threads therefore belong to the CPU
  // Executor thread that runs all long CPU work (apply_threads); the calling JS thread keeps its short,
  // synchronous work (model init, state-dict copies) single-threaded so it never owns a team.
  at::set_num_threads(1);
}

int threads() {
  if (g_threads <= 0) return at::get_num_threads();
  return g_adaptive ? g_current.load() : g_threads.load();
}

bool adaptive_threads() { return g_adaptive; }

void apply_threads() {
  if (g_threads <= 0 || at::in_parallel_region()) return;
  if (g_adaptive) adapt();
  const int n = threads();
  if (at::get_num_threads() != n) at::set_num_threads(n);
}

}  // namespace btm
