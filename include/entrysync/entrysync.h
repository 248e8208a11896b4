// entrysync's public API in one include. See engine.h to start.
#pragma once

#include "entrysync/engine.h"
#include "entrysync/events.h"
#include "entrysync/export.h"
#include "entrysync/info.h"
#include "entrysync/log.h"
#include "entrysync/options.h"
#include "entrysync/record.h"
#include "entrysync/status.h"
#include "entrysync/types.h"

namespace entrysync {

// This library's version, "MAJOR.MINOR.PATCH".
ENTRYSYNC_EXPORT const char* Version();

}  // namespace entrysync
