// Path arithmetic shared by the real and the simulated disk. Pure string
// work: nothing here touches a file system.
#pragma once

#include <string>
#include <vector>

namespace bw::env {

// "a/b/c" -> "a/b"; "c" -> "."; "/c" -> "/".
std::string ParentDir(const std::string& path);
// "a/b/c" -> "c".
std::string BaseName(const std::string& path);
// The directories `mkdir -p dir` creates, outermost first: "/a/b" -> "/a",
// "/a/b"; "a//b/" -> "a", "a//b". Empty components are skipped.
std::vector<std::string> DirPrefixes(const std::string& dir);

}  // namespace bw::env
