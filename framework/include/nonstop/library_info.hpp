// A snapshot of one loaded module library (shell `libraries`, host dashboards).
#pragma once

#include <string>

namespace nonstop {

struct LibraryInfo {
    std::string path;         // the path the operator named, made absolute
    std::string mapped_path;  // the file mapped: path, or a private copy of a changed file
    std::string kind;
    std::string version;
    long instances = 0;  // module instances using it (including ones being created)
    std::string sha256;  // of the content loaded, in hexadecimal
};

}  // namespace nonstop
