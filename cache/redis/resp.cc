#include "cache/redis/resp.h"

#include <hiredis/hiredis.h>

#include <memory>
#include <vector>

namespace pglane::cache::redis {

namespace {

// Replies are built straight into our Reply tree by hiredis's object hooks, which also bound
// what a hostile or corrupt reply can make us allocate: hiredis 0.14 would calloc an array of
// whatever element count the header claims before a single element arrived.
Reply* place(const redisReadTask* task, Reply&& r) {
  if (task->parent != nullptr) {
    auto* parent = static_cast<Reply*>(task->parent->obj);
    Reply& slot = parent->elements[static_cast<size_t>(task->idx)];
    slot = std::move(r);
    return &slot;
  }
  return new Reply(std::move(r));
}

void* create_string(const redisReadTask* task, char* str, size_t len) {
  Reply r;
  r.type = task->type == REDIS_REPLY_ERROR    ? Reply::Type::kError
           : task->type == REDIS_REPLY_STATUS ? Reply::Type::kStatus
                                              : Reply::Type::kString;
  r.str.assign(str, len);
  return place(task, std::move(r));
}

void* create_array(const redisReadTask* task, int elements) {
  if (elements < 0 || elements > kMaxReplyElements) {
    return nullptr;  // hiredis reports it as an error; the connection is closed
  }
  Reply r;
  r.type = Reply::Type::kArray;
  r.elements.resize(static_cast<size_t>(elements));  // children are placed in these slots
  return place(task, std::move(r));
}

void* create_integer(const redisReadTask* task, long long value) {
  Reply r;
  r.type = Reply::Type::kInteger;
  r.integer = value;
  return place(task, std::move(r));
}

void* create_nil(const redisReadTask* task) {
  return place(task, Reply{});
}

// hiredis frees only the root (children live inside it).
void free_object(void* obj) {
  delete static_cast<Reply*>(obj);
}

redisReplyObjectFunctions kFunctions = {create_string, create_array, create_integer, create_nil,
                                        free_object};

}  // namespace

void format_command(std::span<const std::string_view> args, std::string& out) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (std::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  char* cmd = nullptr;
  const int n =
      redisFormatCommandArgv(&cmd, static_cast<int>(args.size()), argv.data(), lens.data());
  if (n > 0 && cmd != nullptr) {
    out.append(cmd, static_cast<size_t>(n));
  }
  redisFreeCommand(cmd);
}

ReplyReader::ReplyReader() : reader_(redisReaderCreateWithFunctions(&kFunctions)) {}

ReplyReader::~ReplyReader() {
  redisReaderFree(reader_);
}

void ReplyReader::feed(std::string_view bytes) {
  if (failed_ || bytes.empty()) {
    return;
  }
  if (redisReaderFeed(reader_, bytes.data(), bytes.size()) != REDIS_OK) {
    failed_ = true;
    error_ = reader_->errstr;
    return;
  }
  if (reader_->len - reader_->pos > kMaxReplyBytes) {
    failed_ = true;  // a reply this large is not one we asked for
    error_ = "reply over " + std::to_string(kMaxReplyBytes) + " bytes";
  }
}

std::optional<Reply> ReplyReader::next() {
  if (failed_) {
    return std::nullopt;
  }
  void* raw = nullptr;
  if (redisReaderGetReply(reader_, &raw) != REDIS_OK) {
    failed_ = true;
    error_ = reader_->errstr;
    return std::nullopt;
  }
  if (raw == nullptr) {
    return std::nullopt;
  }
  std::unique_ptr<Reply> root(static_cast<Reply*>(raw));
  return std::move(*root);
}

}  // namespace pglane::cache::redis
