// A fixed-bucket histogram of durations or sizes, in the Prometheus model:
// cumulative counts per upper bound, a count and a sum. Not thread-safe;
// callers that share one lock around it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bw::core {

class Histogram {
 public:
  // `bounds` ascending; a last bucket of +Inf is implied.
  explicit Histogram(std::vector<double> bounds)
      : bounds_(std::move(bounds)), counts_(bounds_.size() + 1, 0) {}

  // Seconds, from 100 µs to about 8 s, doubling (etcd's disk histograms).
  static Histogram LatencySeconds() {
    std::vector<double> b;
    for (double x = 0.0001; x < 10; x *= 2)
      b.push_back(x);
    return Histogram(std::move(b));
  }

  void Observe(double v) {
    size_t i = 0;
    while (i < bounds_.size() && v > bounds_[i])
      ++i;
    ++counts_[i];
    ++count_;
    sum_ += v;
  }

  const std::vector<double>& bounds() const { return bounds_; }
  // Per bucket (not cumulative); the last is +Inf.
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t count() const { return count_; }
  double sum() const { return sum_; }

 private:
  std::vector<double> bounds_;
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  double sum_ = 0;
};

}  // namespace bw::core
