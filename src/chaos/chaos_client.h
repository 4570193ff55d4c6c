// What the chaos workloads share about talking to the cluster: the client
// settings they all use, and reading a whole key range back in pages.
#pragma once

#include <string>
#include <vector>

#include "bulwark/client.h"

namespace bw::chaos {

// libbulwark settings for a chaos client: calls end by `op_timeout_us`
// (attempts by 500 ms), quick backoff, 10 s to connect.
bulwark::ClientOptions ChaosClientOptions(std::vector<std::string> endpoints,
                                          int64_t op_timeout_us);

// Every key in [key, range_end), read in pages of 5,000 at the revision of
// the first page (a long run writes more than one answer holds).
[[nodiscard]] absl::Status ReadAll(bulwark::Client& c, const std::string& key,
                                   const std::string& range_end,
                                   std::vector<mvccpb::KeyValue>* out);

}  // namespace bw::chaos
