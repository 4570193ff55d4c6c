# The fuzz build (-DBW_FUZZ=ON, clang only; `make build-fuzz` configures it
# in build-fuzz/). Included by the top-level CMakeLists.txt in place of the
# normal targets, so it sees the generated protobuf sources there.
#
# Lean on purpose, since `make test` builds it on a 2-core machine: only the
# sources the targets reach, at -O1. Our code gets libFuzzer's coverage
# instrumentation and ASan + UBSan (-fsanitize=fuzzer-no-link for the
# library, -fsanitize=fuzzer for the executables). The protobuf message code
# is generated, is not ours to fix and is driven through an uninstrumented
# libprotobuf anyway, so it is compiled plainly (no sanitizers, no warnings),
# which also keeps rpc.pb.cc from dominating the build time.
if(NOT CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  message(FATAL_ERROR "BW_FUZZ needs clang (-DCMAKE_CXX_COMPILER=clang++): libFuzzer is clang's")
endif()

set(BW_FUZZ_SANITIZE -fsanitize=address,undefined -fno-sanitize-recover=all
    # UBSan's function check rejects calls through std::function here (clang 14).
    -fno-sanitize=function -fno-omit-frame-pointer)

# Only the message code of the protos the request and MVCC targets use.
set(BW_FUZZ_PROTO_CC)
foreach(base etcd/mvcc/mvccpb/kv etcd/auth/authpb/auth etcd/etcdserver/etcdserverpb/rpc
        bulwark/idempotency bulwark/internal)
  list(APPEND BW_FUZZ_PROTO_CC ${BW_PROTO_GEN}/${base}.pb.cc ${BW_PROTO_GEN}/${base}.pb.h)
endforeach()
add_library(bwfuzz_proto STATIC ${BW_FUZZ_PROTO_CC})
target_compile_options(bwfuzz_proto PRIVATE -w -O1 -g0)
target_include_directories(bwfuzz_proto SYSTEM PUBLIC ${BW_PROTO_GEN})
target_link_libraries(bwfuzz_proto PUBLIC protobuf::libprotobuf)

set(BW_FUZZ_SOURCES
    core/assert.cc core/crc32c.cc
    env/path.cc env/seeded_random.cc env/sim/sim_disk.cc
    raft/codec.cc raft/conf_change.cc raft/config.cc raft/forwarded.cc raft/progress.cc raft/quorum.cc
    raft/raft.cc raft/raft_log.cc raft/raft_reads.cc raft/raft_replication.cc
    storage/raft_store.cc storage/snapshot_manifest.cc storage/wal.cc
    transport/frame.cc
    kv/auth.cc kv/mvcc.cc kv/mvcc_alarms.cc kv/mvcc_leases.cc kv/mvcc_permissions.cc
    kv/mvcc_records.cc kv/mvcc_snapshot.cc
    kv/txn_check.cc
    server/config.cc server/jwt.cc server/tls_files.cc)
list(TRANSFORM BW_FUZZ_SOURCES PREPEND ${CMAKE_SOURCE_DIR}/src/)
add_library(bwfuzz_lib STATIC ${BW_FUZZ_SOURCES})
target_compile_options(bwfuzz_lib PUBLIC -O1 -g ${BW_FUZZ_SANITIZE}
                       PRIVATE -fsanitize=fuzzer-no-link)
target_link_options(bwfuzz_lib PUBLIC ${BW_FUZZ_SANITIZE})
target_include_directories(bwfuzz_lib PUBLIC ${CMAKE_SOURCE_DIR})
target_link_libraries(bwfuzz_lib PUBLIC bwfuzz_proto absl::status absl::statusor absl::strings
                      absl::str_format absl::flat_hash_map absl::btree tomlplusplus::tomlplusplus
                      OpenSSL::Crypto)
if(BW_PLANTED_BUGS)
  target_compile_definitions(bwfuzz_lib PUBLIC BW_PLANTED_BUGS=1)
endif()

# One executable per fuzz/<name>_fuzz.cc.
file(GLOB BW_FUZZ_TARGETS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/fuzz/*_fuzz.cc)
foreach(src ${BW_FUZZ_TARGETS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_compile_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  target_link_libraries(${name} PRIVATE bwfuzz_lib)
endforeach()
