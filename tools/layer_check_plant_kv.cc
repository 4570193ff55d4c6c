// The kv half of the planted upward call (see layer_check_plant.cc).
namespace bw::kv {
int PlantedUpwardCallee() {
  return 1;
}
}  // namespace bw::kv
