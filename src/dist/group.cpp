#include "graft/dist/group.h"

// Debian's libtorch_cpu is built with Gloo; its header compiles only with this.
#ifndef USE_C10D_GLOO
#define USE_C10D_GLOO
#endif
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <dlfcn.h>

#include <cerrno>
#include <cstdlib>

#include "graft/core/error.h"

namespace graft::dist {

namespace {

// c10::Error's what() carries a C++ backtrace; the first line says it all.
std::string message_of(const std::exception& e) {
  std::string m;
  if (auto* c = dynamic_cast<const c10::Error*>(&e)) m = c->what_without_backtrace();
  else m = e.what();
  auto nl = m.find('\n');
  if (nl != std::string::npos) m = m.substr(0, nl);
  return m;
}

bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

long parse_env_int(const char* name, const std::string& value, long lo, long hi) {
  char* end = nullptr;
  errno = 0;
  long v = std::strtol(value.c_str(), &end, 10);
  GRAFT_CHECK_USAGE(errno == 0 && end != value.c_str() && *end == '\0' && v >= lo && v <= hi,
                    "environment variable ", name, "='", value, "' (expected an integer from ", lo,
                    " to ", hi, ")");
  return v;
}

double parse_env_double(const char* name, const std::string& value) {
  char* end = nullptr;
  double v = std::strtod(value.c_str(), &end);
  GRAFT_CHECK_USAGE(end != value.c_str() && *end == '\0' && v > 0, "environment variable ", name,
                    "='", value, "' (expected a positive number)");
  return v;
}

// c10d reports through glog what our errors say again, with a glog banner;
// keep only fatal messages unless the user asked for GLOG_minloglevel. Found
// with dlsym: graft does not link glog itself (LibTorch does).
void quiet_c10d_logging() {
  if (std::getenv("GLOG_minloglevel")) return;
  if (auto* level = static_cast<int*>(dlsym(RTLD_DEFAULT, "_ZN3fLI17FLAGS_minloglevelE")))
    *level = 3;
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host.rfind("127.", 0) == 0 || host == "::1";
}

}  // namespace

std::optional<WorldConfig> from_environment() {
  const char* ws = std::getenv("WORLD_SIZE");
  if (!ws || !*ws) return std::nullopt;
  WorldConfig c;
  c.world_size = static_cast<int>(parse_env_int("WORLD_SIZE", ws, 1, 65536));
  c.rank = static_cast<int>(parse_env_int("RANK", env_or("RANK", "0"), 0, c.world_size - 1));
  c.local_world_size = static_cast<int>(
      parse_env_int("LOCAL_WORLD_SIZE", env_or("LOCAL_WORLD_SIZE", "1"), 1, c.world_size));
  c.local_rank = static_cast<int>(
      parse_env_int("LOCAL_RANK", env_or("LOCAL_RANK", "0"), 0, c.local_world_size - 1));
  c.master_addr = env_or("MASTER_ADDR", c.master_addr);
  c.master_port = static_cast<int>(
      parse_env_int("MASTER_PORT", env_or("MASTER_PORT", std::to_string(c.master_port)), 1, 65535));
  if (const char* t = std::getenv("GRAFT_DIST_TIMEOUT"); t && *t)
    c.timeout_s = parse_env_double("GRAFT_DIST_TIMEOUT", t);
  if (const char* b = std::getenv("GRAFT_DIST_BUCKET_MB"); b && *b)
    c.bucket_mb = parse_env_double("GRAFT_DIST_BUCKET_MB", b);
  if (const char* v = std::getenv("GRAFT_DIST_OVERLAP"); v && *v) c.overlap = std::string(v) != "0";
  return c;
}

struct Work::Impl {
  c10::intrusive_ptr<c10d::Work> work;
  std::string what;
  int rank = 0, size = 1;
};

namespace {

[[noreturn]] void collective_failed(const std::string& what, int rank, int size,
                                    const std::exception& e) {
  throw Error(str_cat("distributed ", what, " failed on rank ", rank, " of ", size, ": ",
                      message_of(e),
                      " (another worker has probably stopped or crashed: see its message; a worker "
                      "that hangs is given up on after --dist-timeout)"));
}

}  // namespace

void Work::wait() {
  if (!impl_) return;
  try {
    impl_->work->wait();
  } catch (const std::exception& e) {
    collective_failed(impl_->what, impl_->rank, impl_->size, e);
  }
}

struct Group::Impl {
  WorldConfig config;
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> pg;
  std::chrono::milliseconds timeout{0};
};

Group::Group() : impl_(std::make_unique<Impl>()) {}
Group::~Group() = default;

int Group::rank() const { return impl_->config.rank; }
int Group::size() const { return impl_->config.world_size; }
const WorldConfig& Group::config() const { return impl_->config; }

std::shared_ptr<Group> Group::connect(const WorldConfig& c) {
  GRAFT_CHECK_USAGE(c.world_size >= 1 && c.rank >= 0 && c.rank < c.world_size, "rank ", c.rank,
                    " with world size ", c.world_size, " (expected 0 <= rank < world size)");
  GRAFT_CHECK_USAGE(c.master_port >= 1 && c.master_port <= 65535, "--master-port ", c.master_port,
                    " (expected 1 to 65535)");
  quiet_c10d_logging();
  std::shared_ptr<Group> g(new Group());
  Impl& s = *g->impl_;
  s.config = c;
  s.timeout = std::chrono::milliseconds(static_cast<int64_t>(c.timeout_s * 1000));
  const std::string where = str_cat(c.master_addr, ":", c.master_port);
  const std::string me = str_cat("rank ", c.rank, " of ", c.world_size);

  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(c.master_port);
  so.isServer = c.rank == 0;
  so.numWorkers = c.world_size;
  // Who joined is checked below, with messages that say which rank is missing.
  so.waitWorkers = false;
  so.timeout = s.timeout;
  try {
    s.store = c10::make_intrusive<c10d::TCPStore>(c.master_addr, so);
  } catch (const std::exception& e) {
    const std::string m = message_of(e);
    if (c.rank == 0 && (contains(m, "in use") || contains(m, "failed to listen") ||
                        contains(m, "EADDRINUSE")))
      throw Error(str_cat(me, ": cannot start the rendezvous server on port ", c.master_port,
                          ": the port is already in use on this machine (choose another with "
                          "--master-port or MASTER_PORT) [", m, "]"));
    throw Error(str_cat(me, ": cannot reach the rendezvous server at ", where, " within ",
                        c.timeout_s, " s (check --master-addr/--master-port or MASTER_ADDR/"
                        "MASTER_PORT, and that rank 0 is running) [", m, "]"));
  }

  // Rank 0 publishes its world size; each other rank claims its number,
  // publishes its own, compares with rank 0's and says it has (so that
  // rank 0, which compares too, does not leave before the other has seen the
  // mismatch and can say so itself).
  auto publish = [&](const std::string& key, const std::string& value) {
    try {
      s.store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
    } catch (const std::exception& e) {
      throw Error(str_cat(me, ": the rendezvous server at ", where, " stopped answering [",
                          message_of(e), "]"));
    }
  };
  auto fetch = [&](int r, const std::string& key) -> std::string {
    try {
      s.store->wait({key}, s.timeout);
      auto v = s.store->get(key);
      return std::string(v.begin(), v.end());
    } catch (const std::exception& e) {
      throw Error(str_cat(me, ": rank ", r, " did not join the rendezvous at ", where, " within ",
                          c.timeout_s, " s (is it running, with the same --master-addr/"
                          "--master-port and WORLD_SIZE?) [", message_of(e), "]"));
    }
  };
  try {
    int64_t claims = s.store->add(str_cat("graft/rank_claim/", c.rank), 1);
    GRAFT_CHECK(claims == 1, me, ": rank ", c.rank,
                " was given to two workers (RANK must be unique, 0 to WORLD_SIZE-1)");
  } catch (const Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Error(str_cat(me, ": the rendezvous server at ", where, " stopped answering [",
                        message_of(e), "]"));
  }
  publish(str_cat("graft/world_size/", c.rank), std::to_string(c.world_size));
  if (c.rank == 0) {
    for (int r = 1; r < c.world_size; ++r) {
      int w = std::stoi(fetch(r, str_cat("graft/world_size/", r)));
      if (w != c.world_size) {
        try {
          s.store->wait({str_cat("graft/checked/", r)}, s.timeout);
        } catch (const std::exception&) {
        }
        throw Error(str_cat(me, ": rank ", r, " has world size ", w, " but rank 0 has ",
                            c.world_size,
                            " (every worker must get the same WORLD_SIZE / --nnodes x --nproc)"));
      }
    }
  } else {
    int w = std::stoi(fetch(0, "graft/world_size/0"));
    publish(str_cat("graft/checked/", c.rank), "1");
    GRAFT_CHECK(w == c.world_size, me, ": this worker has world size ", c.world_size,
                " but rank 0 has ", w,
                " (every worker must get the same WORLD_SIZE / --nnodes x --nproc)");
  }

  try {
    auto opts = c10d::ProcessGroupGloo::Options::create(s.timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    if (ifname && *ifname)
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    else if (is_loopback(c.master_addr))
      opts->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else
      opts->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    opts->threads = 2;
    auto prefixed = c10::make_intrusive<c10d::PrefixStore>("gloo", s.store);
    s.pg = c10::make_intrusive<c10d::ProcessGroupGloo>(prefixed, c.rank, c.world_size, opts);
  } catch (const std::exception& e) {
    throw Error(str_cat(me, ": cannot connect the Gloo process group (rendezvous at ", where,
                        ") within ", c.timeout_s, " s [", message_of(e),
                        "]; on several machines set GLOO_SOCKET_IFNAME to the network interface"));
  }
  return g;
}

Work Group::all_reduce_async(torch::Tensor& t, const std::string& what) {
  Work w;
  w.impl_ = std::make_shared<Work::Impl>();
  w.impl_->what = what;
  w.impl_->rank = rank();
  w.impl_->size = size();
  try {
    std::vector<at::Tensor> ts{t};
    w.impl_->work = impl_->pg->allreduce(ts);
  } catch (const std::exception& e) {
    collective_failed(what, rank(), size(), e);
  }
  return w;
}

void Group::all_reduce(torch::Tensor& t, const std::string& what, bool max) {
  try {
    std::vector<at::Tensor> ts{t};
    c10d::AllreduceOptions o;
    o.reduceOp = max ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
    impl_->pg->allreduce(ts, o)->wait();
  } catch (const std::exception& e) {
    collective_failed(what, rank(), size(), e);
  }
}

bool Group::any(bool flag, const std::string& what) {
  torch::Tensor t = torch::tensor({flag ? 1 : 0}, torch::kInt32);
  all_reduce(t, what, /*max=*/true);
  return t.item<int>() != 0;
}

void Group::broadcast(std::vector<torch::Tensor>& tensors, const std::string& what, int root) {
  try {
    c10d::BroadcastOptions o;
    o.rootRank = root;
    // One tensor per call: Gloo's broadcast takes a single tensor per process.
    std::vector<c10::intrusive_ptr<c10d::Work>> works;
    for (auto& t : tensors) {
      std::vector<at::Tensor> one{t};
      works.push_back(impl_->pg->broadcast(one, o));
    }
    for (auto& w : works) w->wait();
  } catch (const std::exception& e) {
    collective_failed(what, rank(), size(), e);
  }
}

torch::Tensor Group::all_gather_rows(const torch::Tensor& t, const std::string& what) {
  GRAFT_CHECK(t.dim() >= 1, "all_gather_rows: a tensor with rows is needed (got 0-d)");
  const int n = size();
  torch::Tensor counts = torch::zeros({n}, torch::kInt64);
  counts[rank()] = t.size(0);
  all_reduce(counts, what + " (row counts)");
  const int64_t most = counts.max().item<int64_t>();
  auto shape = t.sizes().vec();
  shape[0] = most;
  torch::Tensor padded = torch::zeros(shape, t.options());
  if (t.size(0) > 0) padded.narrow(0, 0, t.size(0)).copy_(t);
  std::vector<std::vector<at::Tensor>> out(1);
  for (int r = 0; r < n; ++r) out[0].push_back(torch::empty(shape, t.options()));
  try {
    std::vector<at::Tensor> in{padded.contiguous()};
    impl_->pg->allgather(out, in)->wait();
  } catch (const std::exception& e) {
    collective_failed(what, rank(), size(), e);
  }
  std::vector<torch::Tensor> parts;
  for (int r = 0; r < n; ++r) parts.push_back(out[0][r].narrow(0, 0, counts[r].item<int64_t>()));
  return torch::cat(parts);
}

void Group::barrier(const std::string& what) {
  try {
    impl_->pg->barrier()->wait();
  } catch (const std::exception& e) {
    collective_failed(what, rank(), size(), e);
  }
}

void Group::store_set(const std::string& key, const std::string& value) {
  try {
    impl_->store->set(key, std::vector<uint8_t>(value.begin(), value.end()));
  } catch (const std::exception& e) {
    throw Error(str_cat("rank ", rank(), ": the rendezvous store stopped answering while setting '",
                        key, "' [", message_of(e), "]"));
  }
}

std::string Group::store_get(const std::string& key) {
  try {
    impl_->store->wait({key}, impl_->timeout);
    auto v = impl_->store->get(key);
    return std::string(v.begin(), v.end());
  } catch (const std::exception& e) {
    throw Error(str_cat("rank ", rank(), ": '", key, "' did not appear in the rendezvous store within ",
                        impl_->config.timeout_s, " s (rank 0 has probably stopped) [",
                        message_of(e), "]"));
  }
}

}  // namespace graft::dist
