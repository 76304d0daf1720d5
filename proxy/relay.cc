#include "proxy/relay.h"

#include <algorithm>
#include <deque>
#include <vector>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "absl/strings/str_cat.h"
#include "protocol/messages.h"

namespace pglane::proxy {

using namespace boost::asio::experimental::awaitable_operators;
namespace p = protocol;

namespace {

constexpr auto kUse = asio::as_tuple(asio::use_awaitable);

// What one batch of server bytes becomes for the client: runs of the server's own bytes (views
// into its input buffer, merged when adjacent) and replies pglane made, in order, for one
// gathered write.
class Gather : public txn::ClientSink {
 public:
  void pass(std::string_view bytes) override {
    if (run_end_ == bytes.data() && !bufs_.empty()) {
      bufs_.back() = asio::const_buffer(bufs_.back().data(), bufs_.back().size() + bytes.size());
    } else {
      bufs_.emplace_back(bytes.data(), bytes.size());
    }
    run_end_ = bytes.data() + bytes.size();
  }
  void own(std::string bytes) override {
    owned_.push_back(std::move(bytes));
    bufs_.emplace_back(owned_.back().data(), owned_.back().size());
    run_end_ = nullptr;
  }
  void clear() {
    bufs_.clear();
    owned_.clear();
    run_end_ = nullptr;
  }
  bool empty() const { return bufs_.empty(); }
  const std::vector<asio::const_buffer>& buffers() const { return bufs_; }

 private:
  std::vector<asio::const_buffer> bufs_;
  std::deque<std::string> owned_;  // deque: stable addresses as it grows
  const char* run_end_ = nullptr;
};

}  // namespace

asio::awaitable<End> Relay::run(ServerConn& server, RelayPolicy& policy,
                                std::chrono::milliseconds idle_timeout) {
  server_ = &server;
  policy_ = &policy;
  detach_wanted_ = false;
  awaiting_drain_ = false;
  if (!drained_) {
    drained_ = std::make_unique<asio::steady_timer>(co_await asio::this_coro::executor);
  }
  End end;
  if (idle_timeout.count() > 0) {
    auto r = co_await (client_to_server() || server_to_client() || idle_watchdog(idle_timeout));
    end = std::visit([](End e) { return e; }, r);
  } else {
    auto r = co_await (client_to_server() || server_to_client());
    end = std::visit([](End e) { return e; }, r);
  }
  server_ = nullptr;
  policy_ = nullptr;
  co_return end;
}

bool Relay::detachable() const {
  return policy_->may_detach() && server_->status == 'I' && c2s_remaining_ == 0 &&
         s2c_remaining_ == 0;
}

// Client -> server. Frames the policy passes through are forwarded as they arrive, in the same
// bytes; the others are handed to the policy whole, and what it writes goes in their place.
asio::awaitable<End> Relay::client_to_server() {
  const size_t max_message = cfg_.proxy.max_message_size;
  Buffer& cin = client_.in;
  std::string out;
  size_t need = 1;
  for (;;) {
    if (cin.size() < need) {
      auto [ec, n] = co_await client_.stream.read_some(cin.prepare(need - cin.size()));
      if (ec) {
        co_return End::kClientGone;
      }
      client_.stream.count_read(n);
      cin.commit(n);
      last_client_activity_ = std::chrono::steady_clock::now();
    }
    const std::string_view data = cin.data();
    size_t pos = 0;
    size_t verbatim_from = 0;  // data[verbatim_from, pos) goes to the server unchanged
    bool rewritten = false;    // the policy handled a whole message in this batch
    End stop = End::kRunning;
    bool reroute = false;
    out.clear();
    need = 1;
    while (pos < data.size()) {
      if (c2s_remaining_ > 0) {
        size_t take = std::min(c2s_remaining_, data.size() - pos);
        pos += take;
        c2s_remaining_ -= take;
        continue;
      }
      auto h = p::decode_header(data.substr(pos), max_message);
      if (h.status == p::DecodeStatus::kNeedMore) {
        need = data.size() - pos + 1;
        break;
      }
      if (h.status == p::DecodeStatus::kViolation) {
        client_.fail(p::sqlstate::kProtocolViolation,
                     absl::StrCat("invalid message: ", std::string(h.error)));
        stop = End::kClientViolation;
        break;
      }
      const char type = h.frame.type;
      const size_t size = h.frame.size;
      if (type == 'X') {
        stop = End::kClientTerminated;
        break;
      }
      if (type == 'Q' || type == 'E') {
        ++queries_;
      }
      RelayPolicy::Step step = policy_->on_client_frame(type, size, data.substr(pos));
      if (step == RelayPolicy::Step::kNeedMore) {
        need = data.size() - pos + 1;
        break;
      }
      if (step == RelayPolicy::Step::kReroute) {
        reroute = true;
        break;
      }
      if (step == RelayPolicy::Step::kWhole) {
        if (data.size() - pos < size) {
          need = size;
          break;
        }
        out.append(data.substr(verbatim_from, pos - verbatim_from));
        rewritten = true;
        End e = policy_->on_client_message(type, data.substr(pos, size), out);
        pos += size;
        verbatim_from = pos;
        if (e != End::kRunning) {
          stop = e;
          break;
        }
        continue;
      }
      policy_->on_client_forwarded(type);
      size_t take = std::min(size, data.size() - pos);
      pos += take;
      c2s_remaining_ = size - take;
    }
    if (std::string local = policy_->take_local(); !local.empty()) {
      if (co_await client_.write(local)) {
        co_return End::kClientGone;
      }
    }
    std::string_view to_server = data.substr(0, pos);
    if (rewritten) {
      out.append(data.substr(verbatim_from, pos - verbatim_from));
      to_server = out;
    }
    if (!to_server.empty()) {
      c2s_writing_ = true;
      struct Writing {
        bool& flag;
        ~Writing() { flag = false; }
      } writing{c2s_writing_};
      if (co_await server_->stream.write_all(to_server)) {
        co_return End::kServerGone;
      }
    }
    policy_->on_client_consumed(data.substr(0, pos));
    cin.consume(pos);
    if (stop != End::kRunning) {
      co_return stop;
    }
    if (reroute) {
      // The next frames belong on another server. Wait for this one's answers; then the policy
      // decides whether to move.
      while (policy_->owes_replies() || s2c_writing_ || s2c_remaining_ > 0) {
        drained_->expires_at(asio::steady_timer::time_point::max());
        awaiting_drain_ = true;
        co_await drained_->async_wait(kUse);
        awaiting_drain_ = false;
      }
      if (policy_->after_reroute_wait(server_->status == 'I' && detachable())) {
        co_return End::kDetach;
      }
      need = 1;
      continue;
    }
    if (detach_wanted_ && detachable()) {
      co_return End::kDetach;
    }
  }
}

// Server -> client. Rows and COPY data stream; messages the policy reads whole are handed to it
// with the server's status and settings already applied.
asio::awaitable<End> Relay::server_to_client() {
  Buffer& in = server_->in;
  size_t need = 1;
  Gather gather;
  for (;;) {
    if (in.size() < need) {
      auto [ec, n] = co_await server_->stream.read_some(in.prepare(need - in.size()));
      if (ec) {
        co_return End::kServerGone;
      }
      in.commit(n);
    }
    const std::string_view data = in.data();
    size_t pos = 0;
    need = 1;
    gather.clear();
    bool idle_after = false;  // the batch ends with the server idle and nothing after it
    while (pos < data.size()) {
      if (s2c_remaining_ > 0) {
        size_t take = std::min(s2c_remaining_, data.size() - pos);
        gather.pass(data.substr(pos, take));
        pos += take;
        s2c_remaining_ -= take;
        continue;
      }
      // The server is trusted up to PostgreSQL's own message limit (a row may be 1 GB).
      auto h = p::decode_header(data.substr(pos), p::kDefaultMaxMessage);
      if (h.status == p::DecodeStatus::kNeedMore) {
        need = data.size() - pos + 1;
        break;
      }
      if (h.status == p::DecodeStatus::kViolation) {
        co_return End::kServerViolation;
      }
      const char type = h.frame.type;
      const size_t size = h.frame.size;
      if (policy_->whole_from_server(type, size)) {
        if (data.size() - pos < size) {
          need = size;  // wait for the whole message; earlier bytes are flushed first
          break;
        }
        std::string_view msg = data.substr(pos, size);
        std::string_view body = msg.substr(p::kHeaderSize);
        pos += size;
        if (type == 'Z') {
          server_->status = body.empty() ? 'I' : body[0];
          idle_after = server_->status == 'I';
        } else if (type == 'S') {
          if (auto ps = p::parse_parameter_status(body)) {
            server_->set_param(ps->first, ps->second);
          }
        } else if (type != 'N') {
          idle_after = false;
        }
        policy_->on_server_message(type, msg, gather);
        continue;
      }
      policy_->on_server_stream(type, gather);
      size_t take = std::min(size, data.size() - pos);
      gather.pass(data.substr(pos, take));
      pos += take;
      s2c_remaining_ = size - take;
    }
    if (policy_->hold_before_client_write()) {
      s2c_writing_ = true;  // holding replies: the client side must not detach meanwhile
      co_await policy_->before_client_write();
      s2c_writing_ = false;
    }
    if (!gather.empty()) {
      s2c_writing_ = true;
      auto ec = co_await client_.write(gather.buffers());
      s2c_writing_ = false;
      if (ec) {
        co_return End::kClientGone;
      }
    }
    in.consume(pos);
    if (awaiting_drain_ && !policy_->owes_replies()) {
      drained_->cancel();  // the client side is waiting to move to another server
    }
    if (idle_after && detachable()) {
      if (c2s_writing_) {
        detach_wanted_ = true;
      } else {
        co_return End::kDetach;
      }
    }
  }
}

asio::awaitable<End> Relay::idle_watchdog(std::chrono::milliseconds limit) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer timer(ex);
  last_client_activity_ = std::chrono::steady_clock::now();
  for (;;) {
    timer.expires_at(last_client_activity_ + limit);
    co_await timer.async_wait(kUse);
    const auto now = std::chrono::steady_clock::now();
    if (now < last_client_activity_ + limit) {
      continue;
    }
    // Only a client that is idle outside a transaction and not waiting on a result times out.
    if (!policy_->owes_replies() && server_->status == 'I') {
      client_.fail(p::sqlstate::kIdleSessionTimeout, "terminating connection due to idle timeout");
      co_return End::kIdleTimeout;
    }
    last_client_activity_ = now;
  }
}

}  // namespace pglane::proxy
