#include "client/watch_pipe.h"

#include <optional>
#include <string>

#include "token/ids.h"

namespace ta::client {

bool WatchEntryRefs::ToRef(const tokenauthority::v1::RevocationEvent& e, std::array<char, 16>* raw,
                           token::RevocationView::EntryRef* out) {
  using tokenauthority::v1::RevocationEvent;
  out->seq = e.seq();
  out->live_until =
      absl::FromUnixSeconds(e.live_until().seconds()) + absl::Nanoseconds(e.live_until().nanos());
  switch (e.kind()) {
    case RevocationEvent::JTI:
      out->kind = RevocationEntry::Kind::kJti;
      out->id = e.id();
      return true;
    case RevocationEvent::FAMILY:
    case RevocationEvent::SUBJECT: {
      out->kind = e.kind() == RevocationEvent::FAMILY ? RevocationEntry::Kind::kFamily
                                                      : RevocationEntry::Kind::kSubject;
      std::optional<std::string> decoded = token::DecodeFamilyIdText(e.id());
      if (!decoded.has_value() || decoded->size() != raw->size()) return false;
      std::copy(decoded->begin(), decoded->end(), raw->begin());
      out->id = absl::string_view(raw->data(), raw->size());
      return true;
    }
    default:
      return false;
  }
}

}  // namespace ta::client
