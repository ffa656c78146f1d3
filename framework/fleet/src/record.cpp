#include "record.hpp"

#include <openssl/evp.h>

#include <fstream>
#include <iterator>
#include <sstream>

#include "nonstop/error.hpp"

namespace nonstop {

Record Record::parse(const std::string& text) {
    Record r;
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) continue;
        r.fields_.emplace_back(line.substr(0, eq), line.substr(eq + 1));
    }
    return r;
}

std::string Record::text() const {
    std::string out;
    for (const auto& [k, v] : fields_) out += k + "=" + v + "\n";
    return out;
}

std::string Record::get(const std::string& key) const {
    for (const auto& [k, v] : fields_)
        if (k == key) return v;
    return {};
}

std::vector<std::string> Record::all(const std::string& key) const {
    std::vector<std::string> out;
    for (const auto& [k, v] : fields_)
        if (k == key) out.push_back(v);
    return out;
}

Record& Record::set(const std::string& key, const std::string& value) {
    std::erase_if(fields_, [&](const auto& f) { return f.first == key; });
    fields_.emplace_back(key, value);
    return *this;
}

Record& Record::add(const std::string& key, const std::string& value) {
    fields_.emplace_back(key, value);
    return *this;
}

std::string file_sha256(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot read the library '" + path + "'");
    const std::string content((std::istreambuf_iterator<char>(in)), {});
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned length = 0;
    if (EVP_Digest(content.data(), content.size(), digest, &length, EVP_sha256(), nullptr) != 1)
        throw Error("cannot compute the SHA-256 of '" + path + "'");
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; ++i) {
        out += hex[digest[i] >> 4];
        out += hex[digest[i] & 15];
    }
    return out;
}

std::int64_t now_ms() {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
}

std::vector<std::string> fields(const std::string& line, std::size_t count) {
    std::vector<std::string> out;
    std::size_t at = 0;
    while (out.size() + 1 < count) {
        const auto space = line.find(' ', at);
        if (space == std::string::npos) break;
        out.push_back(line.substr(at, space - at));
        at = space + 1;
    }
    out.push_back(line.substr(at));
    while (out.size() < count) out.emplace_back();
    return out;
}

}  // namespace nonstop
