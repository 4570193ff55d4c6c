// A planted upward call, to see the layer link check catch it: compiled
// only with -DBW_PLANT_UPWARD_CALL=ON, this puts into raft a call to a
// function of kv, declared by hand so that no #include betrays it (the
// include check, tools/layers.py, cannot see it). The program still links,
// since it has every layer; bw_raft_check does not.
namespace bw::kv {
int PlantedUpwardCallee();
}  // namespace bw::kv

namespace bw::raft {
int PlantedUpwardCall() {
  return bw::kv::PlantedUpwardCallee();
}
}  // namespace bw::raft
