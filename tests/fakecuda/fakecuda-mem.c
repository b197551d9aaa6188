/* SPDX-License-Identifier: Apache-2.0 */
/* fakecuda: contexts, memory, streams and events over host memory (to be written). */
#include "fakecuda.h"
