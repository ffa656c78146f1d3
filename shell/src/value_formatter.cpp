#include "nonstop/value_formatter.hpp"

#include <algorithm>
#include <cstdio>
#include <string_view>
#include <utility>
#include <vector>

namespace nonstop {

namespace {

using Field = std::pair<std::string, Tcl_Obj*>;
using Record = std::vector<Field>;

std::string text(Tcl_Obj* o) {
    int n = 0;
    const char* s = Tcl_GetStringFromObj(o, &n);
    std::string out(s, static_cast<std::size_t>(n));
    std::replace(out.begin(), out.end(), '\n', ' ');
    return out;
}

bool is_key(const std::string& k) {
    return !k.empty() && std::all_of(k.begin(), k.end(), [](char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
    });
}

/// `value` as a dict whose keys all look like field names, in their order; false otherwise.
bool as_record(Tcl_Obj* value, Record& out) {
    int size = 0;
    if (Tcl_DictObjSize(nullptr, value, &size) != TCL_OK || size < 2) return false;
    Tcl_DictSearch search;
    Tcl_Obj *key = nullptr, *field = nullptr;
    int done = 0;
    out.clear();
    if (Tcl_DictObjFirst(nullptr, value, &search, &key, &field, &done) != TCL_OK) return false;
    for (; !done; Tcl_DictObjNext(&search, &key, &field, &done))
        out.emplace_back(Tcl_GetString(key), field);
    Tcl_DictObjDone(&search);
    return std::all_of(out.begin(), out.end(), [](const Field& f) { return is_key(f.first); });
}

Tcl_Obj* find(const Record& r, std::string_view key) {
    for (const auto& [k, v] : r)
        if (k == key) return v;
    return nullptr;
}

std::string get(const Record& r, std::string_view key) {
    Tcl_Obj* v = find(r, key);
    return v ? text(v) : std::string();
}

bool has(const Record& r, std::initializer_list<std::string_view> keys) {
    return std::all_of(keys.begin(), keys.end(), [&](std::string_view k) { return find(r, k); });
}

bool is_report(const Record& r) { return has(r, {"id", "command", "outcome", "targets"}); }
bool is_info(const Record& r) { return has(r, {"name", "kind", "version", "status", "enabled"}); }

std::string ms(const std::string& value) {
    double d = 0;
    if (std::sscanf(value.c_str(), "%lf", &d) != 1) return value;
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.3f ms", d);
    return buf;
}

bool is_zero(const std::string& v) { return v.empty() || v == "0" || v == "0.0" || v == "false"; }

/// A cell: durations in ms, digests cut to what a person compares.
std::string cell(const std::string& key, const std::string& value) {
    if (key.size() > 3 && key.compare(key.size() - 3, 3, "_ms") == 0) return ms(value);
    if (key == "sha256" && value.size() > 12) return value.substr(0, 12) + "...";
    return value.empty() ? "-" : value;
}

std::string table(const std::vector<std::string>& headers,
                  const std::vector<std::vector<std::string>>& rows, const std::string& indent) {
    std::vector<std::size_t> width(headers.size());
    for (std::size_t c = 0; c < headers.size(); ++c) {
        width[c] = headers[c].size();
        for (const auto& row : rows) width[c] = std::max(width[c], row[c].size());
    }
    auto line = [&](const std::vector<std::string>& cells) {
        std::string out = indent;
        for (std::size_t c = 0; c < cells.size(); ++c) {
            out += cells[c];
            if (c + 1 < cells.size()) out += std::string(width[c] - cells[c].size() + 2, ' ');
        }
        return out + "\n";
    };
    std::string out = line(headers);
    for (const auto& row : rows) out += line(row);
    return out;
}

/// Fields as "key  value" lines, keys aligned.
std::string fields(const std::vector<std::pair<std::string, std::string>>& lines,
                   const std::string& indent) {
    std::size_t width = 0;
    for (const auto& l : lines) width = std::max(width, l.first.size());
    std::string out;
    for (const auto& [k, v] : lines)
        out += indent + k + std::string(width - k.size() + 2, ' ') + v + "\n";
    return out;
}

const std::vector<std::string> target_columns = {
    "name", "action", "versions", "vote", "quiesced", "state", "buffered", "blackout", "library"};

std::vector<std::string> target_row(const Record& t) {
    const std::string from = get(t, "old_version"), to = get(t, "new_version");
    return {cell("", get(t, "name")),
            cell("", get(t, "action")),
            (from.empty() ? "-" : from) + " -> " + (to.empty() ? "-" : to),
            cell("", get(t, "vote")),
            ms(get(t, "quiescence_ms")),
            get(t, "checkpoint_bytes") + " B",
            get(t, "buffered"),
            ms(get(t, "blackout_ms")),
            cell("", get(t, "library"))};
}

/// What a target row leaves out, when it says something: forced, losses, kinds, digest and
/// any field added later.
std::string target_notes(const Record& t) {
    static const std::vector<std::string_view> shown = {
        "name",          "action",           "library",  "old_version", "new_version", "vote",
        "quiescence_ms", "checkpoint_bytes", "buffered", "blackout_ms", "old_kind",    "new_kind"};
    std::vector<std::string> notes;
    const std::string old_kind = get(t, "old_kind"), new_kind = get(t, "new_kind");
    if (!old_kind.empty() && !new_kind.empty() && old_kind != new_kind)
        notes.push_back("kind " + old_kind + " -> " + new_kind);
    for (const auto& [k, v] : t) {
        if (std::find(shown.begin(), shown.end(), k) != shown.end()) continue;
        const std::string value = text(v);
        if (is_zero(value)) continue;
        notes.push_back(k + " " + cell(k, value));
    }
    std::string out;
    for (const auto& n : notes) out += (out.empty() ? "" : ", ") + n;
    return out;
}

std::string report_block(const Record& r) {
    std::string out = "transaction " + get(r, "id") + ": " + get(r, "command") + "\n";
    std::vector<std::pair<std::string, std::string>> lines = {
        {"outcome", get(r, "outcome")},
        {"reason", cell("", get(r, "reason"))},
        {"mode", cell("", get(r, "mode"))},
        {"duration", ms(get(r, "duration_ms")) + " (waited " + ms(get(r, "waited_ms")) + ")"}};
    static const std::vector<std::string_view> shown = {
        "id", "command", "outcome", "reason", "mode", "duration_ms", "waited_ms", "targets"};
    for (const auto& [k, v] : r)
        if (std::find(shown.begin(), shown.end(), k) == shown.end())
            lines.emplace_back(k, cell(k, text(v)));
    out += fields(lines, "  ");
    int n = 0;
    Tcl_Obj** targets = nullptr;
    if (Tcl_ListObjGetElements(nullptr, find(r, "targets"), &n, &targets) != TCL_OK || n == 0)
        return out;
    std::vector<std::vector<std::string>> rows;
    std::vector<std::string> notes;
    Record t;
    for (int i = 0; i < n; ++i) {
        if (!as_record(targets[i], t)) continue;
        rows.push_back(target_row(t));
        notes.push_back(target_notes(t));
    }
    const std::string rendered = table(target_columns, rows, "    ");
    // Each target's notes go under its row.
    std::size_t at = rendered.find('\n') + 1;
    out += "  targets\n" + rendered.substr(0, at);
    for (const auto& note : notes) {
        const std::size_t end = rendered.find('\n', at) + 1;
        out += rendered.substr(at, end - at);
        if (!note.empty()) out += "      " + note + "\n";
        at = end;
    }
    return out;
}

std::string records_table(const std::vector<Record>& records) {
    std::vector<std::string> keys;
    if (std::all_of(records.begin(), records.end(), is_report))
        keys = {"id", "outcome", "duration_ms", "command", "reason"};
    else if (std::all_of(records.begin(), records.end(), is_info))
        keys = {"name",        "kind",    "version",        "status", "enabled",
                "queue_depth", "handled", "handler_errors", "stuck"};
    else
        for (const auto& f : records.front()) keys.push_back(f.first);
    std::vector<std::vector<std::string>> rows;
    for (const auto& r : records) {
        std::vector<std::string> row;
        for (const auto& k : keys) row.push_back(cell(k, get(r, k)));
        rows.push_back(std::move(row));
    }
    return table(keys, rows, "");
}

bool same_keys(const Record& a, const Record& b) {
    return a.size() == b.size() &&
           std::equal(a.begin(), a.end(), b.begin(),
                      [](const Field& x, const Field& y) { return x.first == y.first; });
}

std::string strip(std::string s) {
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
}

}  // namespace

std::string ValueFormatter::render(Tcl_Obj* value) {
    Record record;
    if (as_record(value, record)) {
        if (is_report(record)) return strip(report_block(record));
        if (is_info(record)) {
            std::vector<std::pair<std::string, std::string>> lines;
            for (const auto& [k, v] : record) lines.emplace_back(k, cell(k, text(v)));
            return strip(fields(lines, ""));
        }
    }
    int n = 0;
    Tcl_Obj** items = nullptr;
    std::vector<Record> records;
    if (Tcl_ListObjGetElements(nullptr, value, &n, &items) == TCL_OK && n > 0) {
        for (int i = 0; i < n; ++i) {
            if (!as_record(items[i], record) ||
                (!records.empty() && !same_keys(records.front(), record)))
                return Tcl_GetString(value);
            records.push_back(record);
        }
        return strip(records_table(records));
    }
    return Tcl_GetString(value);
}

}  // namespace nonstop
