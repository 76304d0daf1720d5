// Stage 4 under transaction pooling (docs/internals.md, "Transaction pooling"): the client holds
// a server only from the first message of a unit of work to the ReadyForQuery that reports it
// idle. Between units it holds nothing; each unit is classified (routing/unit), placed
// (routing/placement) and run on a leased server through the relay, with the transaction layer
// (txn::Conversation) deciding what each frame becomes.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "cache/tap.h"
#include "proxy/client.h"
#include "proxy/lease.h"
#include "proxy/relay.h"
#include "proxy/result_cache.h"
#include "proxy/session_end.h"
#include "proxy/sessions.h"
#include "proxy/topology.h"
#include "routing/placement.h"
#include "routing/unit.h"
#include "txn/conversation.h"

namespace pglane::proxy {

class TransactionPooling : public RelayPolicy {
 public:
  // `routing`: read/write splitting is on for this session.
  TransactionPooling(Client& client, const conf::Config& cfg, ServerLease& lease,
                     txn::Conversation& conv, routing::StatementMemo& memo, bool routing,
                     SessionEntry& entry);

  // Serves the client until the session ends. The lease holds the session's first server.
  asio::awaitable<End> serve();

  // Query and Execute messages not counted yet (the session's last, unfinished unit).
  uint64_t take_queries() { return relay_.take_queries(); }
  // Whether the attached server still owes the client replies, and whether a frame is half
  // relayed (finish() decides from these what to do with the server).
  bool mid_frame() const { return relay_.mid_frame(); }
  bool client_mid_frame() const { return relay_.client_mid_frame(); }
  // The session ends: the endpoint bookkeeping of the attached server.
  void leave_endpoint();
  // The session ends with writes on the writer not yet known committed or rolled back (a
  // client gone mid-commit): they may still commit, so their floors (and cache versions) are
  // raised as if they had.
  asio::awaitable<void> abandon_writes();

  // ---- RelayPolicy ----
  Step on_client_frame(char type, size_t size, std::string_view from_here) override;
  End on_client_message(char type, std::string_view whole, std::string& out) override;
  void on_client_forwarded(char type) override;
  std::string take_local() override { return conv_.take_local_now(); }
  void on_client_consumed(std::string_view bytes) override { conv_.note_sent(bytes); }
  bool after_reroute_wait(bool idle) override;
  bool whole_from_server(char type, size_t size) override;
  void on_server_message(char type, std::string_view msg, txn::ClientSink& sink) override;
  void on_server_stream(char type, txn::ClientSink& sink) override {
    if (fill_.tap.active()) {
      fill_.tap.on_stream();  // too large to keep: not stored
    }
    conv_.on_server_stream(type, sink);
  }
  bool owes_replies() const override { return conv_.owes_replies(); }
  bool may_detach() const override { return conv_.pinned() == nullptr && conv_.settled(); }
  bool hold_before_client_write() const override { return publish_due_; }
  asio::awaitable<void> before_client_write() override;

 private:
  struct Target {
    EndpointState* endpoint = nullptr;
    routing::Route route = routing::Route::kWriter;
    routing::Placement placement;
  };

  asio::awaitable<End> wait_for_client();
  asio::awaitable<End> answer_known_prepare(bool& answered);
  asio::awaitable<End> attach(bool& answered);
  asio::awaitable<End> route_unit(Target& target, bool& writes, bool& answered);
  asio::awaitable<End> answer_route_setting(const routing::Unit& unit);
  asio::awaitable<End> reject_unit(const routing::Unit& unit);
  asio::awaitable<End> place_and_acquire(const routing::Unit& unit, Target& target, bool& answered);
  asio::awaitable<void> detach();
  asio::awaitable<End> survive_server_loss();
  asio::awaitable<End> answer_locally(size_t consumed);
  // `writes`: the unit that chose the server needs the writer (read-your-writes follows it).
  void begin_attachment(EndpointState* endpoint, routing::Route route, bool writes);
  void note_pins();
  // The unit's statistics, as its server goes back (before the endpoint bookkeeping).
  void account_unit();

  routing::Unit classify(std::string_view data);
  routing::RouteContext route_context();
  Target choose_target(const routing::Decision& d, std::chrono::steady_clock::time_point floor);

  // Freshness floors (proxy/txn_floors.cc).
  // What a client message sent to the writer may write (Query, Parse, Bind, FunctionCall).
  void note_writes(char type, std::string_view whole);
  // The writer reported the attachment idle: its writes are committed (or rolled back) before
  // the client hears so. `settled`: nothing more is owed, so the tables noted are done with.
  void stamp_floors(bool settled);
  // The floor a read unit must respect under the placement policy's scope.
  std::chrono::steady_clock::time_point read_floor(const routing::Unit& u);
  // Whether the attached replica has replayed what a new read unit must see.
  bool attached_fresh_for(const routing::Unit& u);
  void count_route(const Target& target, const routing::Decision& d);

  // The result cache (proxy/txn_cache.cc). A read unit the cache can answer whole (a Query, or
  // an unnamed Parse/Bind/Execute/Sync) is looked up before it is placed: a hit is answered here
  // (`hit`); a miss runs on the writer (fresh as of the lookup) with its answer kept by a tap and
  // stored once the client has it.
  asio::awaitable<End> try_cache(const routing::Unit& unit, bool& hit);
  asio::awaitable<End> answer_cached(size_t unit_size, int64_t started, bool local);
  void tap_client_query();
  void end_fill();  // the fill (if any) is abandoned
  void tap_server_message(char type, std::string_view msg);

  Client& client_;
  const conf::Config& cfg_;
  ServerLease& lease_;
  txn::Conversation& conv_;
  routing::StatementMemo& memo_;
  Relay relay_;
  const bool routing_;
  SessionEntry& entry_;  // what the console and shutdown see of this session
  std::chrono::steady_clock::time_point unit_start_;  // on its server since
  bool login_unit_ = true;                            // the attached server is the one login took
  std::chrono::steady_clock::duration unit_wait_{};   // its wait for a server connection

  // Read/write splitting state (routing_ only).
  routing::Placer placer_;
  uint64_t policy_generation_ = 0;     // live().generation the placer's policy came from
  EndpointState* attached_ = nullptr;  // endpoint of the leased server
  routing::Route attached_route_ = routing::Route::kWriter;  // what it was chosen for
  bool attached_wrote_ = false;    // a unit on this attachment needed the writer
  bool unit_checked_ = false;      // the current unit was found to fit the attached server
  bool since_sync_ = false;        // extended messages went to the server since the last Sync
  bool stay_here_ = false;         // the next unit stays: the client's transaction is open here
  bool commit_in_flight_ = false;  // a COMMIT-like text went to the server, its reply owed
  bool server_fatal_ = false;      // the server sent a FATAL: it is ending the session
  std::string local_reply_;        // what answer_locally() sends
  std::vector<int> excluded_;      // replicas (by index) that failed this unit
  std::shared_ptr<const routing::FunctionCatalog> catalog_;
  // Freshness floors: the tables written on the writer since its last idle ReadyForQuery.
  routing::TableSet written_;
  routing::TableSet to_publish_;  // stamped here, not yet shared with other gateways
  bool publish_due_ = false;
  bool ddl_written_ = false;         // a utility statement went to the writer since the last stamp
  bool unnamed_parsed_ = false;      // a Parse of the unnamed statement came since the last Sync
  bool streamed_statement_ = false;  // the Query/Parse being forwarded was not held whole
  uint64_t db_key_ = 0;              // routing::database_key of the session's database
  // The result cache's miss being filled: looked up (fill_pending_ until its Query goes to
  // the server), then kept by the tap until ReadyForQuery.
  struct Fill {
    bool pending = false;
    int ttl_ms = 0;
    std::string key;                       // cache::result_key
    int64_t started = 0;                   // floor_now() at the lookup
    std::unique_ptr<FlightTicket> ticket;  // this session fills the key (single flight)
    ResultCache::Lookup miss;
    cache::Tap tap;
  } fill_;
  std::chrono::steady_clock::time_point catalog_at_;
};

}  // namespace pglane::proxy
