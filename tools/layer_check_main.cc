// Linked with one layer's whole archive and only the libraries that layer
// declares (CMakeLists.txt, "One library per layer"): the link fails if any
// of its objects needs a symbol from a layer above it. Never run.
int main() {
  return 0;
}
