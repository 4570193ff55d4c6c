#include "env/real/thread.h"

#include <pthread.h>

#include <utility>

namespace bw::env {

Thread::Thread(std::string name, std::function<void()> fn)
    : thread_([name = std::move(name), fn = std::move(fn)] {
        pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
        fn();
      }) {}

Thread::~Thread() {
  if (thread_.joinable()) thread_.join();
}

}  // namespace bw::env
