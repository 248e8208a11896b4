#include "entrysync/entrysync.h"

namespace entrysync {

const char* Version() { return ENTRYSYNC_VERSION; }

}  // namespace entrysync
