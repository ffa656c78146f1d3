// A plain shared library (not a module) with a thread-local of its own, loaded only as a
// dependency of the module thread_local_dep: unloading that module unmaps it too.
#include <string>

thread_local std::string tls_dependency_seen;  // non-trivial: its destructor is registered

__attribute__((visibility("default"))) const std::string& tls_dependency_note(
    const std::string& s) {
    tls_dependency_seen += s;
    return tls_dependency_seen;
}
