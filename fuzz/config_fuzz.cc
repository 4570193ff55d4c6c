// libFuzzer target: the member configuration (server/config.h): the TOML
// config-file parser, Resolve()'s checks and the URL parser.
//
// The input is a config file's text. Asserted:
//   - ParseTomlConfig never crashes or throws; a rejection is
//     INVALID_ARGUMENT;
//   - an accepted file's settings are exactly the file's values: every
//     integer setting holds the integer written (nothing silently
//     truncated), every string setting the string;
//   - Resolve() of an accepted config fails with INVALID_ARGUMENT or
//     UNIMPLEMENTED (https), or gives nonzero member and cluster ids, this
//     member among the members, and listen URLs that parse again to
//     themselves;
//   - ParseUrl of each line of the input: an accepted URL, written back as
//     http://host:port, parses to the same URL.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <toml++/toml.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/assert.h"
#include "fuzz/fuzz_util.h"
#include "server/config.h"

namespace {

using bw::server::ServerConfig;
using bw::server::Url;

void CheckUrlRoundTrip(const Url& u) {
  const std::string text = absl::StrCat(u.scheme, "://", u.HostPort());
  absl::StatusOr<Url> again = bw::server::ParseUrl("fuzz", text);
  BW_ASSERT_MSG(again.ok(), again.status().ToString());
  BW_ASSERT(again->scheme == u.scheme && again->host == u.host && again->port == u.port);
}

// The file's integer settings against the parsed config's fields.
void CheckIntegers(const toml::table& t, const ServerConfig& c) {
  auto want = [&](const char* key, auto field) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    BW_ASSERT(n->is_integer());
    const int64_t v = n->as_integer()->get();
    BW_ASSERT_MSG(v >= 0 && static_cast<uint64_t>(v) == static_cast<uint64_t>(field),
                  absl::StrCat(key, " = ", v, " was read as ", field));
  };
  want("heartbeat-interval", c.heartbeat_interval_ms);
  want("election-timeout", c.election_timeout_ms);
  want("snapshot-count", c.snapshot_count);
  want("quota-backend-bytes", c.quota_backend_bytes);
  want("max-request-bytes", c.max_request_bytes);
  want("max-txn-ops", c.max_txn_ops);
  auto want_string = [&](const char* key, const std::string& field) {
    const toml::node* n = t.get(key);
    if (n == nullptr) return;
    BW_ASSERT(n->is_string());
    BW_ASSERT(n->as_string()->get() == field);
  };
  want_string("name", c.name);
  want_string("data-dir", c.data_dir);
  want_string("initial-cluster", c.initial_cluster);
  want_string("initial-cluster-state", c.initial_cluster_state);
  want_string("initial-cluster-token", c.initial_cluster_token);
}

void CheckResolved(const ServerConfig& c) {
  absl::StatusOr<bw::server::ResolvedConfig> r = bw::server::Resolve(c);
  if (!r.ok()) {
    BW_ASSERT_MSG(absl::IsInvalidArgument(r.status()) || absl::IsUnimplemented(r.status()),
                  r.status().ToString());
    return;
  }
  BW_ASSERT_NE(r->member_id, 0u);
  BW_ASSERT_NE(r->cluster_id, 0u);
  BW_ASSERT(!r->data_dir.empty());
  bool self = false;
  for (const bw::server::Member& m : r->members) {
    BW_ASSERT_NE(m.id, 0u);
    BW_ASSERT(!m.peer_urls.empty());
    self = self || (m.id == r->member_id && m.name == c.name);
  }
  BW_ASSERT(self);
  for (const Url& u : r->client_listen)
    CheckUrlRoundTrip(u);
  CheckUrlRoundTrip(r->peer_listen);
  for (const Url& u : r->metrics_listen)
    CheckUrlRoundTrip(u);
}

std::vector<std::string> Seeds() {
  return {
      "name = \"m1\"\n"
      "data-dir = \"/var/lib/bulwark/m1\"\n"
      "listen-client-urls = \"http://127.0.0.1:2379\"\n"
      "advertise-client-urls = [\"http://127.0.0.1:2379\"]\n"
      "listen-peer-urls = \"http://127.0.0.1:2380\"\n"
      "initial-advertise-peer-urls = \"http://127.0.0.1:2380\"\n"
      "initial-cluster = \"m1=http://127.0.0.1:2380,m2=http://127.0.0.1:2382,"
      "m3=http://127.0.0.1:2384\"\n"
      "initial-cluster-state = \"new\"\n"
      "initial-cluster-token = \"tok\"\n"
      "heartbeat-interval = 100\n"
      "election-timeout = 1000\n"
      "snapshot-count = 10000\n"
      "quota-backend-bytes = 2147483648\n"
      "max-request-bytes = 1572864\n"
      "max-txn-ops = 128\n"
      "listen-metrics-urls = \"http://[::1]:2381/\"\n",
      "name = \"solo\"\n",
      "name = \"x\"\ninitial-cluster-state = \"existing\"\n"
      "initial-cluster = \"x=http://localhost:2380,x=http://localhost:2390\"\n"
      "initial-advertise-peer-urls = [\"http://localhost:2380\", \"http://localhost:2390\"]\n",
      "heartbeat-interval = 10\nelection-timeout = 40\n# too short\n",
  };
}

}  // namespace

BW_FUZZ_SEEDS_HOOK()

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  for (absl::string_view line : absl::StrSplit(absl::string_view(text.data(), text.size()), '\n')) {
    absl::StatusOr<Url> u = bw::server::ParseUrl("fuzz", std::string(line));
    if (u.ok()) CheckUrlRoundTrip(*u);
  }
  absl::StatusOr<ServerConfig> c = bw::server::ParseTomlConfig(text, "fuzz.toml");
  if (!c.ok()) {
    BW_ASSERT_MSG(absl::IsInvalidArgument(c.status()), c.status().ToString());
    return 0;
  }
  toml::table t =
      toml::parse(text, std::string_view("fuzz.toml"));  // parsed once already: cannot throw
  CheckIntegers(t, *c);
  CheckResolved(*c);
  return 0;
}
