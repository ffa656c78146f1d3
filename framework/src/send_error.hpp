// Why a send returned false, kept per thread for nonstop::last_send_error().
#pragma once

namespace nonstop::detail {

enum class SendError { unknown_name, refused, passive, too_large, full, out_of_memory };

void set_send_error(SendError e);

}  // namespace nonstop::detail
