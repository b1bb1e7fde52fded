// The process group and the gradient reducer with two ranks in two threads of
// this process (each with its own TCPStore client and Gloo group, over
// loopback): collectives give the expected values, and K optimiser steps of
// two replicas with half a batch each end with the weights of one model
// trained on the whole batch.

#include "graft/dist/reducer.h"

#include <cstdlib>
#include <functional>
#include <map>
#include <future>
#include <thread>

#include <gtest/gtest.h>

#include "graft/dist/launch.h"
#include "test_util.h"

namespace graft {
namespace {

// Runs f(group) on ranks 0 and 1 at once; returns what each returned.
template <typename T>
std::vector<T> on_two_ranks(const std::function<T(std::shared_ptr<dist::Group>)>& f,
                            double bucket_mb = 25, bool overlap = true) {
  const int port = dist::free_port();
  std::vector<std::future<T>> runs;
  for (int r = 0; r < 2; ++r) {
    runs.push_back(std::async(std::launch::async, [=] {
      dist::WorldConfig c;
      c.rank = r;
      c.world_size = 2;
      c.master_port = port;
      c.timeout_s = 60;
      c.bucket_mb = bucket_mb;
      c.overlap = overlap;
      return f(dist::Group::connect(c));
    }));
  }
  std::vector<T> out;
  for (auto& r : runs) out.push_back(r.get());
  return out;
}

TEST(DistGroup, CollectivesGiveTheExpectedValues) {
  auto got = on_two_ranks<std::vector<torch::Tensor>>([](std::shared_ptr<dist::Group> g) {
    const int r = g->rank();
    torch::Tensor sum = torch::full({3}, float(r + 1));
    g->all_reduce(sum, "test sum");
    torch::Tensor mx = torch::tensor({double(r), 5.0 - r});
    g->all_reduce(mx, "test max", /*max=*/true);
    // Rank 0 has 2 rows, rank 1 has 3.
    torch::Tensor rows = torch::arange(2 + r, torch::kInt64).unsqueeze(1) + 10 * r;
    torch::Tensor gathered = g->all_gather_rows(rows, "test gather");
    std::vector<torch::Tensor> b{torch::full({2}, float(r * 7))};
    g->broadcast(b, "test broadcast");
    torch::Tensor any = torch::tensor({g->any(r == 1, "test any") ? 1 : 0});
    return std::vector<torch::Tensor>{sum, mx, gathered, b[0], any};
  });
  for (const auto& v : got) {
    EXPECT_TRUE(torch::equal(v[0], torch::full({3}, 3.f)));
    EXPECT_TRUE(torch::equal(v[1], torch::tensor({1.0, 5.0})));
    EXPECT_TRUE(torch::equal(v[2].squeeze(1), torch::tensor({0, 1, 10, 11, 12}, torch::kInt64)));
    EXPECT_TRUE(torch::equal(v[3], torch::zeros({2})));
    EXPECT_EQ(v[4].item<int>(), 1);
  }
}

TEST(DistGroup, ReadsTorchrunsEnvironmentAndRejectsBadValues) {
  const char* keys[] = {"WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR",
                        "MASTER_PORT", "GRAFT_DIST_TIMEOUT", "GRAFT_DIST_BUCKET_MB",
                        "GRAFT_DIST_OVERLAP"};
  std::map<std::string, std::string> saved;
  for (const char* k : keys)
    if (const char* v = std::getenv(k)) saved[k] = v;
  auto reset = [&] {
    for (const char* k : keys) unsetenv(k);
  };
  reset();
  EXPECT_FALSE(dist::from_environment().has_value());  // not a distributed run
  setenv("WORLD_SIZE", "4", 1);
  setenv("RANK", "3", 1);
  setenv("LOCAL_RANK", "1", 1);
  setenv("LOCAL_WORLD_SIZE", "2", 1);
  setenv("MASTER_ADDR", "node0", 1);
  setenv("MASTER_PORT", "29555", 1);
  setenv("GRAFT_DIST_OVERLAP", "0", 1);
  auto c = dist::from_environment();
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->world_size, 4);
  EXPECT_EQ(c->rank, 3);
  EXPECT_EQ(c->local_rank, 1);
  EXPECT_EQ(c->local_world_size, 2);
  EXPECT_EQ(c->master_addr, "node0");
  EXPECT_EQ(c->master_port, 29555);
  EXPECT_FALSE(c->overlap);
  setenv("RANK", "4", 1);
  EXPECT_NE(test::error_of([] { dist::from_environment(); }).find("RANK='4'"), std::string::npos);
  setenv("RANK", "0", 1);
  setenv("MASTER_PORT", "http", 1);
  EXPECT_NE(test::error_of([] { dist::from_environment(); }).find("MASTER_PORT='http'"),
            std::string::npos);
  reset();
  for (auto& [k, v] : saved) setenv(k.c_str(), v.c_str(), 1);
}

// A small convolutional network without BatchNorm: its gradient over a batch
// is the mean of the gradients over the two halves.
struct NetImpl : torch::nn::Module {
  NetImpl() {
    conv1 = register_module("conv1", torch::nn::Conv2d(torch::nn::Conv2dOptions(3, 8, 3).padding(1)));
    conv2 = register_module("conv2", torch::nn::Conv2d(torch::nn::Conv2dOptions(8, 8, 3).padding(1)));
    fc = register_module("fc", torch::nn::Linear(8 * 4 * 4, 5));
  }
  torch::Tensor forward(torch::Tensor x) {
    x = torch::relu(conv1(x));
    x = torch::max_pool2d(torch::relu(conv2(x)), 2);
    return fc(x.flatten(1));
  }
  torch::nn::Conv2d conv1{nullptr}, conv2{nullptr};
  torch::nn::Linear fc{nullptr};
};
TORCH_MODULE(Net);

constexpr int kSteps = 5, kBatch = 8;

// The batches, made up front: the global generator is not for two threads.
struct Data {
  std::vector<torch::Tensor> x, y;
  Data() {
    torch::manual_seed(1000);
    for (int s = 0; s < kSteps; ++s) {
      x.push_back(torch::randn({kBatch, 3, 8, 8}));
      y.push_back(torch::arange(kBatch, torch::kInt64).add(s) % 5);
    }
  }
};

Net make_net(uint64_t seed) {
  torch::manual_seed(seed);
  return Net();
}

std::vector<torch::Tensor> flat_params(Net& net) {
  std::vector<torch::Tensor> out;
  for (auto& p : net->parameters()) out.push_back(p.detach().clone());
  return out;
}

// One process, the whole batch.
std::vector<torch::Tensor> train_alone(const Data& d) {
  Net net = make_net(3);
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  for (int s = 0; s < kSteps; ++s) {
    opt.zero_grad();
    torch::nn::functional::cross_entropy(net->forward(d.x[s]), d.y[s]).backward();
    opt.step();
  }
  return flat_params(net);
}

// Rank r takes rows r, r+2, ... of every batch (the sampler's striding).
std::vector<torch::Tensor> train_rank(std::shared_ptr<dist::Group> g, Net net, const Data& d,
                                      int64_t* buckets) {
  dist::broadcast_module(*g, *net);
  dist::GradReducer reducer(g, net->parameters(), g->config().overlap);
  *buckets = reducer.stats().buckets;
  torch::optim::SGD opt(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::Tensor idx = torch::arange(g->rank(), kBatch, 2, torch::kInt64);
  for (int s = 0; s < kSteps; ++s) {
    opt.zero_grad();
    reducer.prepare();
    torch::nn::functional::cross_entropy(net->forward(d.x[s].index_select(0, idx)),
                                         d.y[s].index_select(0, idx))
        .backward();
    reducer.finish();
    opt.step();
  }
  return flat_params(net);
}

double max_diff_of_lists(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i)
    worst = std::max(worst, (a[i] - b[i]).abs().max().item<double>());
  return worst;
}

void check_matches_alone(double bucket_mb, bool overlap, int64_t expect_buckets) {
  const Data data;
  auto alone = train_alone(data);
  // A different initialisation on rank 1: the start-up broadcast must fix it.
  std::vector<Net> nets{make_net(3), make_net(99)};
  std::vector<int64_t> buckets(2);
  auto ranks = on_two_ranks<std::vector<torch::Tensor>>(
      [&](std::shared_ptr<dist::Group> g) {
        return train_rank(g, nets[g->rank()], data, &buckets[g->rank()]);
      },
      bucket_mb, overlap);
  EXPECT_EQ(buckets[0], expect_buckets);
  double d0 = max_diff_of_lists(ranks[0], alone), d1 = max_diff_of_lists(ranks[1], ranks[0]);
  std::cout << "[ dist    ] reducer, " << expect_buckets << " bucket(s), overlap " << overlap
            << ": max |w(2 ranks) - w(1)| = " << d0 << "\n";
  EXPECT_LT(d0, 1e-5);
  EXPECT_EQ(d1, 0.0);  // the replicas stay identical
}

TEST(DistReducer, TwoRanksEndWithTheWeightsOfOneProcessOneBucket) {
  check_matches_alone(25, true, 1);
}

TEST(DistReducer, TwoRanksEndWithTheWeightsOfOneProcessManyBuckets) {
  // 1 KiB buckets: conv2's weight (2.3 KiB) and fc's weight (2.5 KiB) get
  // one each; the six tensors make five buckets, launched from the hooks.
  check_matches_alone(1.0 / 1024, true, 5);
}

TEST(DistReducer, WithoutOverlapTheResultIsTheSame) {
  check_matches_alone(1.0 / 1024, false, 5);
}

}  // namespace
}  // namespace graft
