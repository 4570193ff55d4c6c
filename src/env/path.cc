#include "env/path.h"

namespace bw::env {

std::string ParentDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

std::string BaseName(const std::string& path) {
  size_t slash = path.find_last_of('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

std::vector<std::string> DirPrefixes(const std::string& dir) {
  std::vector<std::string> out;
  size_t pos = !dir.empty() && dir[0] == '/' ? 1 : 0;
  while (pos <= dir.size()) {
    size_t slash = dir.find('/', pos);
    if (slash == std::string::npos) slash = dir.size();
    if (slash > pos) out.push_back(dir.substr(0, slash));
    pos = slash + 1;
  }
  return out;
}

}  // namespace bw::env
