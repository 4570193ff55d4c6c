// The gRPC services of the client port, one file each, as etcd's
// server/etcdserver/api/v3rpc has key.go, watch.go, lease.go, member.go,
// maintenance.go and auth.go: kv_service.cc, watch_service.cc,
// lease_service.cc, cluster_service.cc, maintenance_service.cc,
// auth_service.cc, and idempotency_service.cc for bulwark.v1.Idempotency.
// Each adapts the wire to the member (EtcdServer) and holds no member
// logic. The composition root (EtcdServer::Init) makes one of each and
// registers it; a service lives as long as the server that made it.
#pragma once

#include <memory>

namespace grpc {
class Service;
}  // namespace grpc

namespace bw::server {

class EtcdServer;

std::unique_ptr<grpc::Service> NewKvService(EtcdServer& s);
std::unique_ptr<grpc::Service> NewMaintenanceService(EtcdServer& s);
std::unique_ptr<grpc::Service> NewClusterService(EtcdServer& s);
std::unique_ptr<grpc::Service> NewLeaseService(EtcdServer& s);
std::unique_ptr<grpc::Service> NewWatchService(EtcdServer& s);
std::unique_ptr<grpc::Service> NewIdempotencyService(EtcdServer& s);
std::unique_ptr<grpc::Service> NewAuthService(EtcdServer& s);

}  // namespace bw::server
