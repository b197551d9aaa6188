/* SPDX-License-Identifier: Apache-2.0 */
/* fakecuda: the checkpoint state machine (to be written). */
#include "fakecuda.h"
