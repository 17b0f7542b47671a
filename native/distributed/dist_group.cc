#include "distributed/dist_group.h"

#include "compat.h"

#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/Types.hpp>
#ifdef BTM_WITH_GLOO
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif
#ifdef BTM_WITH_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <algorithm>
#include <cstdlib>
#include <stdexcept>

namespace btm {

namespace {

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string message_of(const std::exception& e) {
  if (const auto* c = dynamic_cast<const c10::Error*>(&e)) return c->what_without_backtrace();
  return e.what();
}

c10::intrusive_ptr<c10d::Store> make_store(const DistConfig& cfg) {
  if (cfg.store == "file") return c10::make_intrusive<c10d::FileStore>(cfg.path, cfg.world_size);
  c10d::TCPStoreOptions o;
  o.port = static_cast<std::uint16_t>(cfg.port);
  o.isServer = cfg.rank == 0;
  o.numWorkers = static_cast<std::size_t>(cfg.world_size);
  o.waitWorkers = true;
  o.timeout = cfg.timeout;
  compat::tcp_store_without_libuv(o);
  try {
    return c10::make_intrusive<c10d::TCPStore>(cfg.host, o);
  } catch (const std::exception& e) {
    const auto msg = message_of(e);
    const auto where = cfg.host + ":" + std::to_string(cfg.port);
    if (cfg.rank == 0 && (lower(msg).find("in use") != std::string::npos || msg.find("EADDRINUSE") != std::string::npos))
      throw std::runtime_error("rank 0 cannot serve the rendezvous at " + where +
                               ": the port is in use (another run on it? choose another port: MASTER_PORT or --dist.port)");
    throw std::runtime_error("rank " + std::to_string(cfg.rank) + ": rendezvous at " + where + " failed: " + msg);
  }
}

// The c10d calls shared by the backends (Gloo's and NCCL's classes have the same collective API).
template <typename PG>
class C10dGroup : public DistGroup {
 public:
  C10dGroup(DistConfig cfg, c10::intrusive_ptr<c10d::Store> store, c10::intrusive_ptr<PG> pg)
      : DistGroup(std::move(cfg)), store_(std::move(store)), pg_(std::move(pg)) {}

  void allreduce_sum(torch::Tensor& t) override {
    run("allreduce", [&] {
      std::vector<torch::Tensor> v{t};
      c10d::AllreduceOptions o;
      o.reduceOp = c10d::ReduceOp::SUM;  // Gloo has no AVG: callers divide
      pg_->allreduce(v, o)->wait();
    });
  }
  void broadcast(torch::Tensor& t, int root) override {
    run("broadcast", [&] {
      std::vector<torch::Tensor> v{t};
      c10d::BroadcastOptions o;
      o.rootRank = root;
      pg_->broadcast(v, o)->wait();
    });
  }
  void barrier() override {
    run("barrier", [&] { pg_->barrier()->wait(); });
  }

 private:
  // A failed collective names this rank and what most likely happened (the backend's own message
  // follows: Gloo names the peer's address when its connection closed).
  template <typename F>
  void run(const char* op, F&& f) {
    try {
      f();
    } catch (const std::exception& e) {
      throw std::runtime_error("rank " + std::to_string(rank()) + " of " + std::to_string(size()) + ": " + op +
                               " failed (another rank stopped, crashed or timed out after " +
                               std::to_string(cfg_.timeout.count() / 1000) + " s): " + message_of(e));
    }
  }

  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<PG> pg_;
};

}  // namespace

std::vector<std::string> dist_backends() {
  std::vector<std::string> out;
#ifdef BTM_WITH_GLOO
  out.push_back("gloo");
#endif
#ifdef BTM_WITH_NCCL
  out.push_back("nccl");
#endif
  return out;
}

std::shared_ptr<DistGroup> DistGroup::create(const DistConfig& cfg) {
  const auto backends = dist_backends();
  if (std::find(backends.begin(), backends.end(), cfg.backend) == backends.end()) {
    std::string have;
    for (const auto& b : backends) have += (have.empty() ? "" : ", ") + b;
    throw std::runtime_error("this build of btm-node has no '" + cfg.backend + "' backend (it has: " +
                             (have.empty() ? "none; Gloo needs libgloo-dev at build time" : have) + ")");
  }
  auto store = make_store(cfg);
  const auto rank_text = "rank " + std::to_string(cfg.rank) + " of " + std::to_string(cfg.world_size);
#ifdef BTM_WITH_GLOO
  if (cfg.backend == "gloo") {
    auto opts = c10d::ProcessGroupGloo::Options::create(cfg.timeout);
    const char* iface = std::getenv("GLOO_SOCKET_IFNAME");  // as PyTorch: the network interface to use
    if (iface && *iface) opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(iface));
    else if (cfg.host == "127.0.0.1" || cfg.host == "localhost" || cfg.store == "file")
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    try {
      auto pg = c10::make_intrusive<c10d::ProcessGroupGloo>(store, cfg.rank, cfg.world_size, opts);
      return std::make_shared<C10dGroup<c10d::ProcessGroupGloo>>(cfg, store, pg);
    } catch (const std::exception& e) {
      throw std::runtime_error(rank_text + ": joining the Gloo group failed: " + message_of(e));
    }
  }
#endif
#ifdef BTM_WITH_NCCL
  if (cfg.backend == "nccl") {
    auto opts = c10d::ProcessGroupNCCL::Options::create();
    opts->timeout = cfg.timeout;
    auto pg = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, cfg.rank, cfg.world_size, opts);
    return std::make_shared<C10dGroup<c10d::ProcessGroupNCCL>>(cfg, store, pg);
  }
#endif
  throw std::runtime_error("unknown backend '" + cfg.backend + "'");
}

}  // namespace btm
